"""Loading single-file SD1.x checkpoints: prefix split, known extras set aside, strict names and shapes,
weights in the compute dtype; standalone VAE files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from support import tiny_sd
from support.checkpoint_factory import (
    full_size_sd15_shapes,
    tiny_sd15_state_dict,
    tiny_sd15_unet_config,
    write_full_size_sd15_checkpoint,
    write_state_dict,
    write_tiny_sd15_checkpoint,
)

from latentloom.runtime.checkpoint import read_state_dict
from latentloom.runtime.clip_tokenizer import ClipTokenizer
from latentloom.runtime.detect import PredictionType, UnsupportedModelError, WrongFileKindError
from latentloom.runtime.devices import DeviceManager
from latentloom.runtime.loader import CheckpointKeyError, load_checkpoint, load_vae, plan_checkpoint

UNET = "model.diffusion_model."
TEXT = "cond_stage_model.transformer."
VAE = "first_stage_model."
SCHEDULE_KEYS = {
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
}
POSITION_IDS = TEXT + "text_model.embeddings.position_ids"


@pytest.fixture(scope="module")
def cpu() -> DeviceManager:
    return DeviceManager(device="cpu")


@pytest.fixture(scope="module")
def tokenizer() -> ClipTokenizer:
    return ClipTokenizer.bundled()


def under(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key.removeprefix(prefix): value for key, value in state.items() if key.startswith(prefix)}


def text_weights_by_checkpoint_name(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """CLIPTextModel's tensors named as in the checkpoint (text_model.*), whichever nesting transformers uses."""
    return {
        key if key.startswith("text_model.") else "text_model." + key: value
        for key, value in model.state_dict().items()
        if not key.endswith("position_ids")
    }


def assert_same_weights(loaded: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], *, dtype: torch.dtype) -> None:
    assert loaded.keys() == expected.keys()
    for key, tensor in expected.items():
        assert loaded[key].dtype == dtype, key
        assert torch.equal(loaded[key], tensor.to(dtype)), key


# --- the tiny checkpoint in the exact SD1.5 layout -------------------------------------------------------


def test_tiny_checkpoint_loads_every_weight_unchanged(tmp_path: Path, cpu: DeviceManager, tokenizer: ClipTokenizer) -> None:
    path = write_tiny_sd15_checkpoint(tmp_path / "tiny.safetensors", seed=1)
    model, clip, vae = load_checkpoint(path, devices=cpu, tokenizer=tokenizer)
    file = read_state_dict(path)
    # The factory's UNet/VAE are tiny_sd's reference weights for this seed: an independent record.
    assert_same_weights(model.unet.state_dict(), tiny_sd.random_unet_state_dict(tiny_sd15_unet_config(), seed=1), dtype=torch.float32)
    assert_same_weights(vae.vae.state_dict(), tiny_sd.random_vae_state_dict(tiny_sd.tiny_vae_config(), seed=1), dtype=torch.float32)
    text = {k: v for k, v in under(file, TEXT).items() if not k.endswith("position_ids")}
    assert_same_weights(text_weights_by_checkpoint_name(clip.encoder.model), text, dtype=torch.float32)
    assert model.unet.config == tiny_sd15_unet_config()
    assert model.prediction_type == PredictionType.EPS
    assert model.patches == ()
    assert model.source == str(path)
    assert model.schedule.num_timesteps == 1000
    assert clip.clip_skip == 1
    assert vae.scale_factor == 0.18215


def test_loaded_modules_are_inference_ready(tmp_path: Path, cpu: DeviceManager, tokenizer: ClipTokenizer) -> None:
    model, clip, vae = load_checkpoint(write_tiny_sd15_checkpoint(tmp_path / "t.safetensors"), devices=cpu, tokenizer=tokenizer)
    for module in (model.unet, clip.encoder.model, vae.vae):
        tensors = [*module.parameters(), *module.buffers()]
        assert not module.training
        assert not any(t.requires_grad for t in module.parameters())
        assert not any(t.is_meta for t in tensors)
        assert all(t.device.type == "cpu" for t in tensors)


@pytest.mark.parametrize("file_dtype", [torch.float16, torch.float32, torch.bfloat16])
def test_any_file_dtype_loads_into_the_compute_dtype(tmp_path: Path, cpu: DeviceManager, file_dtype: torch.dtype, tokenizer: ClipTokenizer) -> None:
    path = write_tiny_sd15_checkpoint(tmp_path / "t.safetensors", dtype=file_dtype)
    model, clip, vae = load_checkpoint(path, devices=cpu, tokenizer=tokenizer)
    file = read_state_dict(path)
    assert cpu.dtype == torch.float32
    assert_same_weights(model.unet.state_dict(), under(file, UNET), dtype=torch.float32)
    assert_same_weights(vae.vae.state_dict(), under(file, VAE), dtype=torch.float32)
    assert {p.dtype for p in clip.encoder.model.parameters()} == {torch.float32}


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_precision_override_sets_the_weights_dtype(tmp_path: Path, precision: str, tokenizer: ClipTokenizer) -> None:
    devices = DeviceManager(device="cpu", precision=precision)
    model, clip, vae = load_checkpoint(write_tiny_sd15_checkpoint(tmp_path / "t.safetensors"), devices=devices, tokenizer=tokenizer)
    for module in (model.unet, clip.encoder.model, vae.vae):
        assert {p.dtype for p in module.parameters()} == {devices.dtype}


@pytest.mark.parametrize("with_schedule_buffers", [True, False])
@pytest.mark.parametrize("with_position_ids", [True, False])
@pytest.mark.parametrize("with_ema", [True, False])
def test_known_extras_are_optional_and_set_aside(
    tmp_path: Path, cpu: DeviceManager, with_schedule_buffers: bool, with_position_ids: bool, with_ema: bool, tokenizer: ClipTokenizer) -> None:
    state = tiny_sd15_state_dict(
        with_schedule_buffers=with_schedule_buffers, with_position_ids=with_position_ids, with_ema=with_ema
    )
    plan = plan_checkpoint(state)
    expected_ignored = {k for k in state if k in SCHEDULE_KEYS or k == POSITION_IDS or k.startswith("model_ema.")}
    assert set(plan.ignored) == expected_ignored
    assert len(expected_ignored & SCHEDULE_KEYS) == (12 if with_schedule_buffers else 0)
    assert (POSITION_IDS in plan.ignored) == with_position_ids
    assert any(k.startswith("model_ema.") for k in plan.ignored) == with_ema
    if with_schedule_buffers == with_position_ids == with_ema:  # the plan is the same code; load two extremes
        model, _, _ = load_checkpoint(write_state_dict(tmp_path / "t.safetensors", state), devices=cpu, tokenizer=tokenizer)
        assert_same_weights(model.unet.state_dict(), under(state, UNET), dtype=torch.float32)


def test_ckpt_file_loads_through_weights_only_like_safetensors(tmp_path: Path, cpu: DeviceManager, tokenizer: ClipTokenizer) -> None:
    ckpt = write_tiny_sd15_checkpoint(tmp_path / "t.ckpt", fmt="ckpt", dtype=torch.float16)
    st = write_tiny_sd15_checkpoint(tmp_path / "t.safetensors", dtype=torch.float16)
    from_ckpt, clip_ckpt, vae_ckpt = load_checkpoint(ckpt, devices=cpu, tokenizer=tokenizer)
    from_st, clip_st, vae_st = load_checkpoint(st, devices=cpu, tokenizer=tokenizer)
    assert_same_weights(from_ckpt.unet.state_dict(), from_st.unet.state_dict(), dtype=torch.float32)
    assert_same_weights(vae_ckpt.vae.state_dict(), vae_st.vae.state_dict(), dtype=torch.float32)
    assert_same_weights(clip_ckpt.encoder.model.state_dict(), clip_st.encoder.model.state_dict(), dtype=torch.float32)


def test_v_pred_marker_reaches_the_model_handle(tmp_path: Path, cpu: DeviceManager, tokenizer: ClipTokenizer) -> None:
    state = tiny_sd15_state_dict() | {"v_pred": torch.tensor([])}
    model, _, _ = load_checkpoint(write_state_dict(tmp_path / "v.safetensors", state), devices=cpu, tokenizer=tokenizer)
    assert model.prediction_type == PredictionType.V


def test_old_text_encoder_layout_loads(tmp_path: Path, cpu: DeviceManager, tokenizer: ClipTokenizer) -> None:
    state = tiny_sd15_state_dict()
    renamed = {
        (TEXT + key.removeprefix(TEXT + "text_model.") if key.startswith(TEXT) else key): value
        for key, value in state.items()
    }
    _, clip, _ = load_checkpoint(write_state_dict(tmp_path / "old.safetensors", renamed), devices=cpu, tokenizer=tokenizer)
    text = {k: v for k, v in under(state, TEXT).items() if not k.endswith("position_ids")}
    assert_same_weights(text_weights_by_checkpoint_name(clip.encoder.model), text, dtype=torch.float32)


# --- strictness: every wrong key named ------------------------------------------------------------------


def test_missing_keys_are_named(tmp_path: Path, cpu: DeviceManager, tokenizer: ClipTokenizer) -> None:
    state = tiny_sd15_state_dict()
    del state[UNET + "out.2.bias"]
    del state[VAE + "decoder.norm_out.weight"]
    with pytest.raises(CheckpointKeyError) as caught:
        load_checkpoint(write_state_dict(tmp_path / "m.safetensors", state), devices=cpu, tokenizer=tokenizer)
    error = caught.value
    assert error.missing == [UNET + "out.2.bias", VAE + "decoder.norm_out.weight"]
    assert "missing keys: model.diffusion_model.out.2.bias, first_stage_model.decoder.norm_out.weight" in str(error)
    assert str(tmp_path / "m.safetensors") in str(error)


def test_missing_text_encoder_key_is_named_with_its_checkpoint_prefix(tmp_path: Path, cpu: DeviceManager, tokenizer: ClipTokenizer) -> None:
    state = tiny_sd15_state_dict()
    del state[TEXT + "text_model.final_layer_norm.bias"]
    with pytest.raises(CheckpointKeyError) as caught:
        load_checkpoint(write_state_dict(tmp_path / "m.safetensors", state), devices=cpu, tokenizer=tokenizer)
    assert caught.value.missing == [TEXT + "text_model.final_layer_norm.bias"]


def test_unexpected_keys_are_named(tmp_path: Path, cpu: DeviceManager, tokenizer: ClipTokenizer) -> None:
    state = tiny_sd15_state_dict() | {
        UNET + "input_blocks.0.0.extra": torch.zeros(1),
        "stray.tensor": torch.zeros(1),
        "logvar": torch.zeros(1000),
    }
    with pytest.raises(CheckpointKeyError) as caught:
        load_checkpoint(write_state_dict(tmp_path / "u.safetensors", state), devices=cpu, tokenizer=tokenizer)
    assert sorted(caught.value.unexpected) == ["logvar", UNET + "input_blocks.0.0.extra", "stray.tensor"]
    assert caught.value.missing == []


def test_wrong_shapes_are_named(tmp_path: Path, cpu: DeviceManager, tokenizer: ClipTokenizer) -> None:
    state = tiny_sd15_state_dict()
    state[VAE + "quant_conv.bias"] = torch.zeros(9)
    with pytest.raises(CheckpointKeyError, match=r"wrong shapes: first_stage_model.quant_conv.bias \(9,\) \(expected \(8,\)\)"):
        load_checkpoint(write_state_dict(tmp_path / "s.safetensors", state), devices=cpu, tokenizer=tokenizer)


def test_error_lists_are_bounded(tmp_path: Path) -> None:
    state = {k: v for k, v in tiny_sd15_state_dict().items() if not k.startswith(UNET + "output_blocks.")}
    with pytest.raises(CheckpointKeyError) as caught:
        plan_checkpoint(state, source="x")
    assert len(caught.value.missing) > 20
    assert f"and {len(caught.value.missing) - 20} more" in str(caught.value)


def test_other_families_are_refused_before_anything_loads(tmp_path: Path, cpu: DeviceManager, tokenizer: ClipTokenizer) -> None:
    state = tiny_sd15_state_dict() | {"conditioner.embedders.1.model.ln_final.weight": torch.ones(4)}
    with pytest.raises(UnsupportedModelError, match="this looks like an SDXL checkpoint"):
        load_checkpoint(write_state_dict(tmp_path / "xl.safetensors", state), devices=cpu, tokenizer=tokenizer)


# --- the full-size key list, checked on shapes alone (meta device) -------------------------------------


@pytest.mark.parametrize("with_schedule_buffers", [True, False])
@pytest.mark.parametrize("with_position_ids", [True, False])
def test_exact_sd15_key_list_plans_cleanly(with_schedule_buffers: bool, with_position_ids: bool) -> None:
    shapes = full_size_sd15_shapes(with_schedule_buffers=with_schedule_buffers, with_position_ids=with_position_ids)
    plan = plan_checkpoint(shapes)
    assert len(plan.unet_keys) == 686
    assert len(plan.vae_keys) == 248
    assert len(plan.text_keys) == 196
    assert len(plan.ignored) == 12 * with_schedule_buffers + with_position_ids
    assert set(plan.unet_keys.values()) == {k.removeprefix(UNET) for k in shapes if k.startswith(UNET)}


def test_sd15_key_list_with_ema_plans_cleanly() -> None:
    shapes = full_size_sd15_shapes()
    ema = {"model_ema.decay": (), "model_ema.num_updates": ()}
    ema |= {"model_ema.diffusion_model" + k.removeprefix(UNET).replace(".", ""): v for k, v in shapes.items() if k.startswith(UNET)}
    plan = plan_checkpoint(shapes | ema)
    assert len(plan.ignored) == 13 + 686 + 2


def test_sd15_key_list_with_one_key_missing_and_one_extra_names_both() -> None:
    shapes = full_size_sd15_shapes()
    del shapes[UNET + "middle_block.1.transformer_blocks.0.attn2.to_v.weight"]
    shapes[VAE + "encoder.mid.attn_2.q.weight"] = (512, 512, 1, 1)
    with pytest.raises(CheckpointKeyError) as caught:
        plan_checkpoint(shapes, source="sd15.safetensors")
    assert caught.value.missing == [UNET + "middle_block.1.transformer_blocks.0.attn2.to_v.weight"]
    assert caught.value.unexpected == [VAE + "encoder.mid.attn_2.q.weight"]


# --- standalone VAE files -------------------------------------------------------------------------


def vae_weights() -> dict[str, torch.Tensor]:
    return under(tiny_sd15_state_dict(), VAE)


@pytest.mark.parametrize("prefix", ["", "first_stage_model."])
def test_vae_file_loads_with_or_without_prefix(tmp_path: Path, cpu: DeviceManager, prefix: str) -> None:
    path = tmp_path / "vae.safetensors"
    save_file({prefix + k: v.half() for k, v in vae_weights().items()}, str(path))
    handle = load_vae(path, devices=cpu)
    assert handle.vae.config == tiny_sd.tiny_vae_config()
    assert_same_weights(handle.vae.state_dict(), {k: v.half() for k, v in vae_weights().items()}, dtype=torch.float32)


def test_vae_from_a_whole_checkpoint_and_training_leftovers(tmp_path: Path, cpu: DeviceManager) -> None:
    whole = write_tiny_sd15_checkpoint(tmp_path / "whole.safetensors")
    handle = load_vae(whole, devices=cpu)
    assert_same_weights(handle.vae.state_dict(), vae_weights(), dtype=torch.float32)
    leftovers = tmp_path / "vae.ckpt"
    torch.save({"state_dict": vae_weights() | {"loss.logvar": torch.zeros(1), "model_ema.decay": torch.tensor(0.9)}}, leftovers)
    assert_same_weights(load_vae(leftovers, devices=cpu).vae.state_dict(), vae_weights(), dtype=torch.float32)


def test_vae_file_with_wrong_keys_names_them(tmp_path: Path, cpu: DeviceManager) -> None:
    weights = vae_weights()
    del weights["post_quant_conv.bias"]
    weights["encoder.extra.weight"] = torch.zeros(1)
    path = tmp_path / "vae.safetensors"
    save_file(weights, str(path))
    with pytest.raises(CheckpointKeyError) as caught:
        load_vae(path, devices=cpu)
    assert caught.value.missing == ["post_quant_conv.bias"]
    assert caught.value.unexpected == ["encoder.extra.weight"]


def test_diffusers_vae_is_refused(tmp_path: Path, cpu: DeviceManager) -> None:
    path = tmp_path / "diffusion_pytorch_model.safetensors"
    save_file({"encoder.down_blocks.0.resnets.0.conv1.weight": torch.zeros(2, 2, 3, 3)}, str(path))
    with pytest.raises(WrongFileKindError, match="diffusers-format VAE"):
        load_vae(path, devices=cpu)


# --- full size (slow: writes and loads a 2 GB file) ------------------------------------------------------


@pytest.mark.slow
def test_full_size_random_sd15_file_loads(tmp_path: Path, cpu: DeviceManager, tokenizer: ClipTokenizer) -> None:
    path = write_full_size_sd15_checkpoint(tmp_path / "sd15.safetensors", dtype=torch.float16)
    model, clip, vae = load_checkpoint(path, devices=cpu, tokenizer=tokenizer)
    shapes = full_size_sd15_shapes()
    for module, prefix in ((model.unet, UNET), (vae.vae, VAE)):
        assert {k: tuple(v.shape) for k, v in module.state_dict().items()} == {
            k.removeprefix(prefix): v for k, v in shapes.items() if k.startswith(prefix)
        }
        assert {p.dtype for p in module.parameters()} == {torch.float32}
    assert clip.encoder.width == 768 and clip.encoder.num_layers == 12
    file = read_state_dict(path)
    for key in (UNET + "out.2.weight", UNET + "middle_block.1.proj_in.weight"):
        assert torch.equal(model.unet.state_dict()[key.removeprefix(UNET)], file[key].float())
    parameters = sum(p.numel() for m in (model.unet, clip.encoder.model, vae.vae) for p in m.parameters())
    assert parameters == sum(
        torch.Size(s).numel() for k, s in shapes.items() if k not in SCHEDULE_KEYS and not k.endswith("position_ids")
    )
