"""Every first-party node answers to ComfyUI's name with ComfyUI's inputs: names, order, types, defaults and
ranges as ComfyUI's nodes.py declares them (transcribed below), so its workflows and API prompts run."""

from __future__ import annotations

import pytest

from latentloom.diffusion.sampler_registry import SAMPLER_NAMES
from latentloom.diffusion.schedulers import SCHEDULER_NAMES

MAX_RES = 16384
SEED = {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF}
PIXELS_8 = {"default": 0, "min": 0, "max": MAX_RES, "step": 8}

# ComfyUI name -> ordered (input, type, options that must match); "COMBO" inputs list their choices.
COMFY_NODES: dict[str, list[tuple[str, str, dict]]] = {
    "CheckpointLoaderSimple": [("ckpt_name", "COMBO", {})],
    "CLIPTextEncode": [("text", "STRING", {"multiline": True}), ("clip", "CLIP", {})],
    "CLIPSetLastLayer": [("clip", "CLIP", {}), ("stop_at_clip_layer", "INT", {"default": -1, "min": -24, "max": -1, "step": 1})],
    "ConditioningCombine": [("conditioning_1", "CONDITIONING", {}), ("conditioning_2", "CONDITIONING", {})],
    "ConditioningSetArea": [
        ("conditioning", "CONDITIONING", {}),
        ("width", "INT", {"default": 64, "min": 64, "max": MAX_RES, "step": 8}),
        ("height", "INT", {"default": 64, "min": 64, "max": MAX_RES, "step": 8}),
        ("x", "INT", PIXELS_8),
        ("y", "INT", PIXELS_8),
        ("strength", "FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}),
    ],
    "EmptyLatentImage": [
        ("width", "INT", {"default": 512, "min": 16, "max": MAX_RES, "step": 8}),
        ("height", "INT", {"default": 512, "min": 16, "max": MAX_RES, "step": 8}),
        ("batch_size", "INT", {"default": 1, "min": 1, "max": 4096}),
    ],
    "KSampler": [
        ("model", "MODEL", {}),
        ("seed", "INT", SEED | {"control_after_generate": True}),
        ("steps", "INT", {"default": 20, "min": 1, "max": 10000}),
        ("cfg", "FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}),
        ("sampler_name", "COMBO", {}),
        ("scheduler", "COMBO", {}),
        ("positive", "CONDITIONING", {}),
        ("negative", "CONDITIONING", {}),
        ("latent_image", "LATENT", {}),
        ("denoise", "FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
    ],
    "KSamplerAdvanced": [
        ("model", "MODEL", {}),
        ("add_noise", "COMBO", {"choices": ["enable", "disable"]}),
        ("noise_seed", "INT", SEED),
        ("steps", "INT", {"default": 20, "min": 1, "max": 10000}),
        ("cfg", "FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}),
        ("sampler_name", "COMBO", {}),
        ("scheduler", "COMBO", {}),
        ("positive", "CONDITIONING", {}),
        ("negative", "CONDITIONING", {}),
        ("latent_image", "LATENT", {}),
        ("start_at_step", "INT", {"default": 0, "min": 0, "max": 10000}),
        ("end_at_step", "INT", {"default": 10000, "min": 0, "max": 10000}),
        ("return_with_leftover_noise", "COMBO", {"choices": ["disable", "enable"]}),
    ],
    "VAEDecode": [("samples", "LATENT", {}), ("vae", "VAE", {})],
    "VAEDecodeTiled": [
        ("samples", "LATENT", {}),
        ("vae", "VAE", {}),
        ("tile_size", "INT", {"default": 512, "min": 64, "max": 4096, "step": 32}),
        ("overlap", "INT", {"default": 64, "min": 0, "max": 4096, "step": 32}),
    ],
    "VAEEncode": [("pixels", "IMAGE", {}), ("vae", "VAE", {})],
    "VAEEncodeForInpaint": [
        ("pixels", "IMAGE", {}),
        ("vae", "VAE", {}),
        ("mask", "MASK", {}),
        ("grow_mask_by", "INT", {"default": 6, "min": 0, "max": 64, "step": 1}),
    ],
    "SetLatentNoiseMask": [("samples", "LATENT", {}), ("mask", "MASK", {})],
    "VAELoader": [("vae_name", "COMBO", {})],
    "LoadImage": [("image", "COMBO", {"image_upload": True})],
    "SaveImage": [("images", "IMAGE", {}), ("filename_prefix", "STRING", {"default": "ComfyUI"})],
    "PreviewImage": [("images", "IMAGE", {})],
    "LatentUpscale": [
        ("samples", "LATENT", {}),
        ("upscale_method", "COMBO", {"choices": ["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]}),
        ("width", "INT", {"default": 512, "min": 0, "max": MAX_RES, "step": 8}),
        ("height", "INT", {"default": 512, "min": 0, "max": MAX_RES, "step": 8}),
        ("crop", "COMBO", {"choices": ["disabled", "center"]}),
    ],
    "LatentUpscaleBy": [
        ("samples", "LATENT", {}),
        ("upscale_method", "COMBO", {"choices": ["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]}),
        ("scale_by", "FLOAT", {"default": 1.5, "min": 0.01, "max": 8.0, "step": 0.01}),
    ],
    "ImageScale": [
        ("image", "IMAGE", {}),
        ("upscale_method", "COMBO", {"choices": ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]}),
        ("width", "INT", {"default": 512, "min": 0, "max": MAX_RES, "step": 1}),
        ("height", "INT", {"default": 512, "min": 0, "max": MAX_RES, "step": 1}),
        ("crop", "COMBO", {"choices": ["disabled", "center"]}),
    ],
    "LatentComposite": [
        ("samples_to", "LATENT", {}),
        ("samples_from", "LATENT", {}),
        ("x", "INT", PIXELS_8),
        ("y", "INT", PIXELS_8),
        ("feather", "INT", PIXELS_8),
    ],
    "RepeatLatentBatch": [("samples", "LATENT", {}), ("amount", "INT", {"default": 1, "min": 1, "max": 64})],
    "ImagePadForOutpaint": [
        ("image", "IMAGE", {}),
        ("left", "INT", PIXELS_8),
        ("top", "INT", PIXELS_8),
        ("right", "INT", PIXELS_8),
        ("bottom", "INT", PIXELS_8),
        ("feathering", "INT", {"default": 40, "min": 0, "max": MAX_RES, "step": 1}),
    ],
}
COMFY_OUTPUTS = {
    "CheckpointLoaderSimple": ["MODEL", "CLIP", "VAE"],
    "LoadImage": ["IMAGE", "MASK"],
    "ImagePadForOutpaint": ["IMAGE", "MASK"],
    "SaveImage": [],
    "PreviewImage": [],
    "CLIPSetLastLayer": ["CLIP"],
    "VAELoader": ["VAE"],
}
OUTPUT_NODES = {"SaveImage", "PreviewImage"}


def _spec(entry: list) -> tuple[str, dict]:
    """(type, options) of an /object_info input entry; combos are typed "COMBO" with their choices."""
    options = entry[1] if len(entry) > 1 else {}
    if isinstance(entry[0], list):
        return "COMBO", {**options, "choices": entry[0]}
    return entry[0], options


@pytest.mark.parametrize("name", sorted(COMFY_NODES))
def test_node_inputs_match_comfyui(bench, name):
    info = bench.registry.object_info(name)[name]
    expected = COMFY_NODES[name]
    assert info["input_order"]["required"] == [input_name for input_name, _, _ in expected]
    for input_name, input_type, options in expected:
        found_type, found_options = _spec(info["input"]["required"][input_name])
        assert found_type == input_type, input_name
        assert {k: found_options.get(k) for k in options} == options, input_name


@pytest.mark.parametrize("name", sorted(COMFY_OUTPUTS))
def test_node_outputs_match_comfyui(bench, name):
    info = bench.registry.object_info(name)[name]
    assert info["output"] == COMFY_OUTPUTS[name]
    assert info["output_node"] == (name in OUTPUT_NODES)


def test_save_and_preview_receive_the_prompt_and_the_workflow(bench):
    for name in ("SaveImage", "PreviewImage"):
        assert bench.registry.object_info(name)[name]["input"]["hidden"] == {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}


def test_sampler_choices_are_our_samplers_plus_comfyuis_gpu_aliases(bench):
    _, options = _spec(bench.registry.object_info("KSampler")["KSampler"]["input"]["required"]["sampler_name"])
    choices = options["choices"]
    assert [c for c in choices if not c.endswith("_gpu")] == list(SAMPLER_NAMES)
    assert choices.index("dpmpp_2m_sde_gpu") == choices.index("dpmpp_2m_sde") + 1
    _, options = _spec(bench.registry.object_info("KSampler")["KSampler"]["input"]["required"]["scheduler"])
    assert options["choices"] == list(SCHEDULER_NAMES)


def test_our_names_and_comfyuis_aliases_reach_the_same_node(bench):
    assert bench.registry.get("CheckpointLoaderSimple") is bench.registry.get("CheckpointLoader")
    assert bench.registry.get("EmptyLatentImage") is bench.registry.get("EmptyLatent")
