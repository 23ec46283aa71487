"""Detection from tensor names and shapes: SD1.x recognised with its architecture, everything else named."""

from __future__ import annotations

import pytest
from support import tiny_sd
from support.checkpoint_factory import full_size_sd15_shapes, tiny_sd15_state_dict, tiny_sd15_unet_config

from latentloom.diffusion.unet_config import UNetConfig
from latentloom.diffusion.vae import VAEConfig
from latentloom.runtime.detect import (
    CheckpointDetection,
    DetectionError,
    ModelFamily,
    OptionalKeys,
    PredictionType,
    UnsupportedModelError,
    WrongFileKindError,
    detect_checkpoint,
    detect_vae_file,
    tensor_shapes,
)

Shapes = dict[str, tuple[int, ...]]


def sd15() -> Shapes:
    return full_size_sd15_shapes()


def tiny() -> Shapes:
    return tensor_shapes(tiny_sd15_state_dict())


def detect(shapes: Shapes, **kwargs: object) -> CheckpointDetection:
    return detect_checkpoint(shapes, source="test.safetensors", **kwargs)  # type: ignore[arg-type]


def test_full_size_sd15_is_sd1_with_the_sd15_architecture() -> None:
    found = detect(sd15())
    assert found.family == ModelFamily.SD1
    assert found.unet_config == UNetConfig()  # the defaults are SD1.5's UNet
    assert found.vae_config == VAEConfig()
    assert found.vae_config.scale_factor == 0.18215
    assert found.prediction_type == PredictionType.EPS
    assert found.text_encoder.source_prefix == "cond_stage_model.transformer."
    assert found.text_encoder.target_prefix == ""
    assert found.optional_keys == {OptionalKeys.SCHEDULE_BUFFERS, OptionalKeys.POSITION_IDS}
    assert not found.inpainting


def test_optional_key_groups_are_reported_as_found() -> None:
    bare = full_size_sd15_shapes(with_schedule_buffers=False, with_position_ids=False)
    assert detect(bare).optional_keys == frozenset()
    with_ema = sd15() | {"model_ema.decay": (), "model_ema.diffusion_modelout2weight": (4, 320, 3, 3)}
    assert OptionalKeys.MODEL_EMA in detect(with_ema).optional_keys


def test_tiny_checkpoint_architecture_round_trips() -> None:
    found = detect(tiny())
    assert found.family == ModelFamily.SD1
    assert found.unet_config == tiny_sd15_unet_config()
    assert found.vae_config == tiny_sd.tiny_vae_config()


def test_inpainting_unet_is_still_sd1() -> None:
    shapes = sd15()
    shapes["model.diffusion_model.input_blocks.0.0.weight"] = (320, 9, 3, 3)
    found = detect(shapes)
    assert found.family == ModelFamily.SD1
    assert found.inpainting
    assert found.unet_config.in_channels == 9


def test_text_encoder_saved_without_text_model_level_is_mapped() -> None:
    prefix = "cond_stage_model.transformer."
    shapes = {
        (prefix + key.removeprefix(prefix + "text_model.") if key.startswith(prefix) else key): shape
        for key, shape in sd15().items()
    }
    found = detect(shapes)
    assert found.text_encoder.source_prefix == prefix
    assert found.text_encoder.target_prefix == "text_model."


def test_v_prediction_hints() -> None:
    assert detect(sd15() | {"v_pred": ()}).prediction_type == PredictionType.V
    assert OptionalKeys.V_PRED_MARKER in detect(sd15() | {"v_pred": ()}).optional_keys
    assert detect(sd15(), metadata={"modelspec.prediction_type": "v"}).prediction_type == PredictionType.V
    assert detect(sd15(), metadata={"modelspec.prediction_type": "epsilon"}).prediction_type == PredictionType.EPS


@pytest.mark.parametrize(("marker", "what"), [("ztsnr", "zero-terminal-SNR"), ("edm_vpred.sigma_max", "EDM")])
def test_schedules_we_do_not_run_are_refused(marker: str, what: str) -> None:
    with pytest.raises(UnsupportedModelError, match=what):
        detect(sd15() | {"v_pred": (), marker: ()})


# --- other families: refused, with the family and the evidence named ------------------------------------


def sdxl_like() -> Shapes:
    unet = {k: v for k, v in sd15().items() if k.startswith("model.diffusion_model.")}
    return unet | {
        "model.diffusion_model.label_emb.0.0.weight": (1280, 2816),
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
        "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight": (3840, 1280),
        "conditioner.embedders.1.model.text_projection": (1280, 1280),
        "first_stage_model.encoder.conv_in.weight": (128, 3, 3, 3),
    }


def sd3_like() -> Shapes:
    return {
        "model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight": (4608, 1536),
        "model.diffusion_model.x_embedder.proj.weight": (1536, 16, 2, 2),
        "text_encoders.clip_l.transformer.text_model.final_layer_norm.weight": (768,),
        "first_stage_model.decoder.conv_in.weight": (512, 16, 3, 3),
    }


def sd2_like() -> Shapes:
    shapes = {k: v for k, v in sd15().items() if not k.startswith("cond_stage_model.")}
    return shapes | {
        "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight": (3072, 1024),
        "cond_stage_model.model.ln_final.weight": (1024,),
    }


def flux_like() -> Shapes:
    return {
        "model.diffusion_model.double_blocks.0.img_attn.qkv.weight": (9216, 3072),
        "model.diffusion_model.single_blocks.0.linear1.weight": (21504, 3072),
    }


def svd_like() -> Shapes:
    return sd15() | {
        "model.diffusion_model.input_blocks.1.0.time_stack.in_layers.2.weight": (320, 320, 3, 1, 1),
        "conditioner.embedders.0.open_clip.model.visual.proj": (1280, 1024),
    }


@pytest.mark.parametrize(
    ("shapes", "family", "article", "key"),
    [
        (sdxl_like, ModelFamily.SDXL, "an", "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight"),
        (sd3_like, ModelFamily.SD3, "an", "model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight"),
        (sd2_like, ModelFamily.SD2, "an", "cond_stage_model.model.ln_final.weight"),
        (flux_like, ModelFamily.FLUX, "a", "model.diffusion_model.double_blocks.0.img_attn.qkv.weight"),
        (svd_like, ModelFamily.SVD, "a", "model.diffusion_model.input_blocks.1.0.time_stack.in_layers.2.weight"),
    ],
)
def test_other_families_are_refused_saying_what_was_found(shapes, family: ModelFamily, article: str, key: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnsupportedModelError) as caught:
        detect(shapes())
    error = caught.value
    assert error.family == family
    # Long key names are shortened with an ellipsis; the start always shows.
    assert error.evidence.startswith("found " + key[:50])
    assert len(error.evidence) <= len("found ") + 60
    assert str(error).startswith(f"test.safetensors: this looks like {article} {family} checkpoint ({error.evidence}); ")
    assert "LatentLoom supports SD1.x" in str(error)


def test_sdxl_refiner_is_named() -> None:
    shapes = {"conditioner.embedders.0.model.transformer.resblocks.0.attn.in_proj_weight": (3840, 1280)}
    with pytest.raises(UnsupportedModelError, match="an SDXL refiner checkpoint"):
        detect(shapes)


def test_label_emb_without_conditioner_is_named_sdxl_like() -> None:
    shapes = sd15() | {"model.diffusion_model.label_emb.0.0.weight": (1280, 2816)}
    with pytest.raises(UnsupportedModelError, match=r"SDXL checkpoint \(found model.diffusion_model.label_emb"):
        detect(shapes)


def test_sd2_unet_in_sd1_key_layout_is_refused_as_sd2() -> None:
    shapes = sd15()
    for key, shape in list(shapes.items()):
        if key.startswith("model.diffusion_model.") and key.endswith((".proj_in.weight", ".proj_out.weight")):
            shapes[key] = shape[:2]  # SD2 projects with Linear layers
    with pytest.raises(UnsupportedModelError, match="an SD2.x checkpoint .*Linear"):
        detect(shapes)


def test_text_width_and_cross_attention_width_must_agree() -> None:
    shapes = tiny()
    shapes["cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"] = (49408, 128)
    with pytest.raises(DetectionError, match="cross-attends to 64-wide text but the text encoder is 128 wide"):
        detect(shapes)


# --- files of other kinds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        ({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 320)}, "looks like a LoRA"),
        ({"unet.down_blocks.0.attentions.0.proj_in.lora_A.weight": (4, 320)}, "looks like a LoRA"),
        ({"down_blocks.0.resnets.0.conv1.weight": (320, 320, 3, 3)}, "diffusers-format"),
        ({"encoder.conv_in.weight": (128, 3, 3, 3), "decoder.conv_in.weight": (512, 4, 3, 3)}, "standalone VAE"),
        ({"first_stage_model.encoder.conv_in.weight": (128, 3, 3, 3)}, "models/vae"),
        ({"emb_params": (2, 768)}, "not a Stable Diffusion checkpoint: found 1 tensors under emb_params"),
        ({}, "the file holds no tensors"),
    ],
)
def test_other_file_kinds_are_named(shapes: Shapes, message: str) -> None:
    with pytest.raises(WrongFileKindError, match=message):
        detect(shapes)


def test_checkpoint_missing_a_part_names_it() -> None:
    shapes = {k: v for k, v in sd15().items() if not k.startswith("first_stage_model.")}
    with pytest.raises(WrongFileKindError, match=r"no first_stage_model\.\* \(VAE\)"):
        detect(shapes)


def test_broken_unet_layout_is_a_detection_error() -> None:
    shapes = {k: v for k, v in sd15().items() if not k.startswith("model.diffusion_model.middle_block.1.")}
    with pytest.raises(DetectionError, match=r"UNet \(model.diffusion_model.\*\) is not in the SD1.x layout"):
        detect(shapes)


# --- standalone VAE files ---------------------------------------------------------------------------


def test_vae_file_with_and_without_checkpoint_prefix() -> None:
    vae = {k: v for k, v in sd15().items() if k.startswith("first_stage_model.")}
    bare = {k.removeprefix("first_stage_model."): v for k, v in vae.items()}
    assert detect_vae_file(bare).config == VAEConfig()
    assert detect_vae_file(bare).prefix == ""
    assert detect_vae_file(vae).prefix == "first_stage_model."
    assert detect_vae_file(sd15()).config == VAEConfig()  # a whole checkpoint holds a VAE too


def test_diffusers_vae_and_non_vae_files_are_refused() -> None:
    with pytest.raises(WrongFileKindError, match="diffusers-format VAE"):
        detect_vae_file({"encoder.down_blocks.0.resnets.0.conv1.weight": (128, 128, 3, 3)})
    with pytest.raises(WrongFileKindError, match="not a VAE: found tensors under lora_unet_x.*"):
        detect_vae_file({"lora_unet_x.lora_down.weight": (4, 320)})
