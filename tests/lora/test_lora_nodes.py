"""LoraLoader / LoraLoaderModelOnly as nodes: stacking, negative strengths, strength 0, file caching."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import nodes.lora
from latentloom.diffusion.denoiser import EpsDenoiser
from latentloom.diffusion.guidance import Cond, cfg_denoiser
from latentloom.diffusion.sampling import ksample
from latentloom.runtime.lora.patch import LoraPatch, apply_lora

LINEAR = "input_blocks.1.1.transformer_blocks.0.attn1.to_v"  # 32 → 32
TEXT = "encoder.layers.1.mlp.fc2"  # 256 → 64 (transformers 5 path; the file says text_model.…)


def rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 0.1


def write_lora(bench, name: str, *, seed: int) -> dict[str, torch.Tensor]:
    unet = "lora_unet_" + LINEAR.replace(".", "_")
    text = "lora_te_text_model_" + TEXT.replace(".", "_")
    state = {f"{unet}.lora_down.weight": rand(4, 32, seed=seed), f"{unet}.lora_up.weight": rand(32, 4, seed=seed + 1),
             f"{unet}.alpha": torch.tensor(2.0), f"{text}.lora_down.weight": rand(4, 256, seed=seed + 2),
             f"{text}.lora_up.weight": rand(64, 4, seed=seed + 3)}  # fmt: skip
    (bench.lora_dir / name).parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(bench.lora_dir / name))
    return state


def unet_delta(state) -> torch.Tensor:
    unet = "lora_unet_" + LINEAR.replace(".", "_")
    return state[f"{unet}.lora_up.weight"] @ state[f"{unet}.lora_down.weight"] * 0.5


@pytest.fixture(scope="module")
def loras(bench):
    return {name: write_lora(bench, name, seed=seed) for seed, name in ((10, "style.safetensors"), (20, "sub/detail.safetensors"))}


def test_loader_lists_the_loras_folder_and_patches_model_and_clip(bench, loras):
    choices = bench.registry.get("LoraLoader").schema.input("lora_name").choices
    assert {"style.safetensors", "sub/detail.safetensors"} <= set(choices() if callable(choices) else choices)
    model, clip, _ = bench.load()
    base = model.unet.get_parameter(LINEAR + ".weight").clone()
    patched_model, patched_clip = bench.run("LoraLoader", model=model, clip=clip, lora_name="style.safetensors",
                                            strength_model=0.8, strength_clip=1.0)  # fmt: skip
    torch.testing.assert_close(patched_model.load().get_parameter(LINEAR + ".weight"),
                               base + 0.8 * unet_delta(loras["style.safetensors"]))  # fmt: skip
    assert torch.equal(model.load().get_parameter(LINEAR + ".weight"), base)  # the cached base serves others as before
    assert not torch.allclose(patched_clip.encode("a cat")[0], clip.encode("a cat")[0])


def test_loras_stack_and_a_negative_strength_subtracts(bench, loras):
    model, clip, _ = bench.load()
    base = model.unet.get_parameter(LINEAR + ".weight").clone()
    (one,) = bench.run("LoraLoaderModelOnly", model=model, lora_name="style.safetensors", strength_model=1.0)
    (two,) = bench.run("LoraLoaderModelOnly", model=one, lora_name="sub/detail.safetensors", strength_model=-0.5)
    expected = base + unet_delta(loras["style.safetensors"]) - 0.5 * unet_delta(loras["sub/detail.safetensors"])
    torch.testing.assert_close(two.load().get_parameter(LINEAR + ".weight"), expected)
    (undone,) = bench.run("LoraLoaderModelOnly", model=one, lora_name="style.safetensors", strength_model=-1.0)
    torch.testing.assert_close(undone.load().get_parameter(LINEAR + ".weight"), base)
    assert len(two.patches) == 2 and two.unet is model.unet


def test_model_only_reports_the_text_encoder_keys_it_cannot_apply(bench, loras):
    model, _, _ = bench.load()
    result = bench.run_result("LoraLoaderModelOnly", model=model, lora_name="style.safetensors", strength_model=1.0)
    (report,) = result.ui["lora_unmatched_keys"]
    assert report["count"] == 2 and all(key.startswith("lora_te_") for key in report["examples"])
    assert len(result.outputs) == 1


def test_a_new_strength_reuses_the_file_already_read(bench, loras, monkeypatch):
    reads = []
    original = nodes.lora.read_state_dict
    monkeypatch.setattr(nodes.lora, "read_state_dict", lambda path: reads.append(path) or original(path))
    model, clip, _ = bench.load()
    loader = bench.registry.get("LoraLoader")
    loader.cache = nodes.lora.LoraFileCache()
    outputs = [bench.run("LoraLoader", model=model, clip=clip, lora_name="style.safetensors", strength_model=s,
                         strength_clip=s)[0] for s in (0.2, 0.4, -1.0)]  # fmt: skip
    assert len(reads) == 1
    assert all(out.unet is model.unet for out in outputs)  # the checkpoint's weights, not a reload


def sample(model, positive, negative) -> torch.Tensor:
    unet = model.load()
    guided = cfg_denoiser(EpsDenoiser(unet, model.schedule), [Cond(positive)], [Cond(negative)], cfg=5.0,
                          schedule=model.schedule)  # fmt: skip
    with torch.inference_mode():
        return ksample(guided, torch.zeros(1, 4, 8, 8), schedule=model.schedule, seed=3, steps=3, sampler="euler",
                       scheduler="karras")  # fmt: skip


def test_strength_zero_gives_the_same_latent_as_no_lora(bench, ctx, loras):
    model, clip, _ = bench.load()
    (positive,) = bench.run("CLIPTextEncode", text="a red cube", clip=clip)
    (negative,) = bench.run("CLIPTextEncode", text="blurry", clip=clip)
    settings = {"seed": 3, "steps": 3, "cfg": 5.0, "sampler_name": "euler", "scheduler": "karras", "denoise": 1.0}
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    (zero_model, zero_clip) = bench.run("LoraLoader", model=model, clip=clip, lora_name="style.safetensors",
                                        strength_model=0.0, strength_clip=0.0)  # fmt: skip
    (zero_positive,) = bench.run("CLIPTextEncode", text="a red cube", clip=zero_clip)
    (plain,) = bench.run("KSampler", ctx, model=model, positive=positive, negative=negative, latent_image=latent, **settings)
    (with_zero,) = bench.run("KSampler", ctx, model=zero_model, positive=zero_positive, negative=negative,
                             latent_image=latent, **settings)  # fmt: skip
    assert torch.equal(plain["samples"], with_zero["samples"])
    # The patch itself at strength 0 (W + 0·ΔW) also leaves the sampled latent bit-identical; at 1 it does not.
    adapters = apply_lora(loras["style.safetensors"], model=model).match.adapters["unet"]
    cond, uncond = positive[0][0], negative[0][0]
    reference = sample(model, cond, uncond)
    assert torch.equal(reference, plain["samples"])
    assert torch.equal(sample(model.clone_with_patch(LoraPatch(adapters, 0.0)), cond, uncond), reference)
    assert not torch.allclose(sample(model.clone_with_patch(LoraPatch(adapters, 1.0)), cond, uncond), reference)
