"""LoRA files in each layout patch exactly the parameters they name, by the formulas of their papers.

Expected weights are computed here independently: LoRA/LoCon as the two (or three) small layers kohya
trains (``layer(x) + scale · up(down(x))``), LoHa and LoKr from the Hadamard / Kronecker formulas.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from support.checkpoint_factory import write_tiny_sd15_checkpoint

from latentloom.runtime.checkpoint import read_state_dict
from latentloom.runtime.devices import DeviceManager
from latentloom.runtime.loader import load_checkpoint
from latentloom.runtime.lora.patch import apply_lora
from latentloom.runtime.lora.reader import LoraFormatError
from latentloom.runtime.lora.weights import patched_view

LINEAR = "input_blocks.1.1.transformer_blocks.0.attn2.to_k"  # Linear 64 → 32
LINEAR_DIFFUSERS = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"
CONV = "input_blocks.1.0.in_layers.2"  # Conv2d 32 → 32, 3×3
CONV_DIFFUSERS = "down_blocks.0.resnets.0.conv1"
TEXT = "encoder.layers.0.self_attn.q_proj"  # the text encoder's own path (transformers 5 has no text_model.)


@pytest.fixture(scope="module")
def handles(tmp_path_factory):
    path = write_tiny_sd15_checkpoint(tmp_path_factory.mktemp("formats") / "tiny.safetensors")
    model, clip, _ = load_checkpoint(path, devices=DeviceManager(device="cpu", precision="fp32"))
    return model, clip


def rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 0.1


def underscored(path: str) -> str:
    return path.replace(".", "_")


def assert_patches_exactly(base, view, expected: dict[str, torch.Tensor]) -> None:
    """Named parameters equal ``expected``; every other tensor is the base's own, bit for bit."""
    base_state, view_state = base.state_dict(), view.state_dict()
    assert view_state.keys() == base_state.keys()
    for key, value in view_state.items():
        if key in expected:
            torch.testing.assert_close(value, expected[key], rtol=1e-5, atol=1e-6)
        else:
            assert torch.equal(value, base_state[key]), key
    assert all(not torch.equal(view_state[k], base_state[k]) for k in expected)


def linear_lora_expected(weight, down, up, scale):
    """kohya's LoRA module: linear(x) + scale · up(down(x)); read back as a weight by feeding the identity."""
    eye = torch.eye(weight.shape[1])
    return (F.linear(eye, weight) + scale * F.linear(F.linear(eye, down), up)).T


def conv_lora_expected(weight, layers, scale):
    """conv(x) + scale · (chain of convs)(x), read back as a weight from unit impulses."""
    out_ch, in_ch, kh, kw = weight.shape
    impulses = torch.zeros(in_ch, in_ch, kh, kw)
    impulses[torch.arange(in_ch), torch.arange(in_ch), kh // 2, kw // 2] = 1.0  # δ at the centre per channel
    y = impulses
    for layer in layers:
        y = F.conv2d(y, layer, padding=layer.shape[-1] // 2)
    # A 3×3 kernel seen through a centred impulse appears flipped; undo it to read the kernel back.
    delta = y.flip(-1, -2).permute(1, 0, 2, 3)
    return weight + scale * delta


def test_kohya_ldm_and_diffusers_names_patch_the_same_linear_layer(handles):
    model, _ = handles
    down, up = rand(4, 64, seed=1), rand(32, 4, seed=2)
    weight = model.unet.get_parameter(LINEAR + ".weight")
    expected = {LINEAR + ".weight": linear_lora_expected(weight, down, up, scale=0.7 * 2.0 / 4)}
    for name in (LINEAR, LINEAR_DIFFUSERS):
        state = {f"lora_unet_{underscored(name)}.lora_down.weight": down,
                 f"lora_unet_{underscored(name)}.lora_up.weight": up,
                 f"lora_unet_{underscored(name)}.alpha": torch.tensor(2.0)}  # fmt: skip
        result = apply_lora(state, model=model, strength_model=0.7)
        assert result.match.unmatched == ()
        assert_patches_exactly(model.unet, result.model.load(), expected)


def test_locon_conv_layer_patches_as_its_two_convolutions(handles):
    model, _ = handles
    down, up = rand(4, 32, 3, 3, seed=3), rand(32, 4, 1, 1, seed=4)
    weight = model.unet.get_parameter(CONV + ".weight")
    state = {f"lora_unet_{underscored(CONV_DIFFUSERS)}.lora_down.weight": down,
             f"lora_unet_{underscored(CONV_DIFFUSERS)}.lora_up.weight": up,
             f"lora_unet_{underscored(CONV_DIFFUSERS)}.alpha": torch.tensor(1.0)}  # fmt: skip
    view = apply_lora(state, model=model, strength_model=-1.5).model.load()
    assert_patches_exactly(model.unet, view, {CONV + ".weight": conv_lora_expected(weight, [down, up], -1.5 / 4)})


def test_locon_tucker_mid_patches_as_three_convolutions(handles):
    model, _ = handles
    down, mid, up = rand(4, 32, 1, 1, seed=5), rand(4, 4, 3, 3, seed=6), rand(32, 4, 1, 1, seed=7)
    weight = model.unet.get_parameter(CONV + ".weight")
    name = f"lora_unet_{underscored(CONV)}"
    state = {f"{name}.lora_down.weight": down, f"{name}.lora_mid.weight": mid, f"{name}.lora_up.weight": up}
    view = apply_lora(state, model=model).model.load()
    assert_patches_exactly(model.unet, view, {CONV + ".weight": conv_lora_expected(weight, [down, mid, up], 1.0)})


def test_loha_linear_is_the_hadamard_product_of_two_low_rank_products(handles):
    model, _ = handles
    w1a, w1b, w2a, w2b = rand(32, 4, seed=8), rand(4, 64, seed=9), rand(32, 4, seed=10), rand(4, 64, seed=11)
    name = f"lora_unet_{underscored(LINEAR)}"
    state = {f"{name}.hada_w1_a": w1a, f"{name}.hada_w1_b": w1b, f"{name}.hada_w2_a": w2a,
             f"{name}.hada_w2_b": w2b, f"{name}.alpha": torch.tensor(8.0)}  # fmt: skip
    weight = model.unet.get_parameter(LINEAR + ".weight")
    expected = weight + 0.5 * (8.0 / 4) * ((w1a @ w1b) * (w2a @ w2b))
    assert_patches_exactly(model.unet, apply_lora(state, model=model, strength_model=0.5).model.load(),
                           {LINEAR + ".weight": expected})  # fmt: skip


def test_loha_conv_with_tucker_cores(handles):
    model, _ = handles
    rank = 3
    t1, t2 = rand(rank, rank, 3, 3, seed=12), rand(rank, rank, 3, 3, seed=13)
    w1a, w1b, w2a, w2b = (rand(rank, 32, seed=s) for s in (14, 15, 16, 17))  # [rank, out], [rank, in]
    name = f"lora_unet_{underscored(CONV)}"
    state = {f"{name}.hada_t1": t1, f"{name}.hada_t2": t2, f"{name}.hada_w1_a": w1a, f"{name}.hada_w1_b": w1b,
             f"{name}.hada_w2_a": w2a, f"{name}.hada_w2_b": w2b}  # fmt: skip

    def rebuilt(core, a, b):  # W[p, r, k, l] = Σ_ij core[i, j, k, l] a[i, p] b[j, r], written as loops over k, l
        out = torch.zeros(a.shape[1], b.shape[1], 3, 3)
        for k in range(3):
            for m in range(3):
                out[:, :, k, m] = a.T @ core[:, :, k, m] @ b
        return out

    weight = model.unet.get_parameter(CONV + ".weight")
    expected = weight + rebuilt(t1, w1a, w1b) * rebuilt(t2, w2a, w2b)
    assert_patches_exactly(model.unet, apply_lora(state, model=model).model.load(), {CONV + ".weight": expected})


def test_lokr_linear_is_a_kronecker_product_scaled_when_factored(handles):
    model, _ = handles
    w1, w2a, w2b = rand(4, 8, seed=18), rand(8, 2, seed=19), rand(2, 8, seed=20)
    name = f"lora_unet_{underscored(LINEAR)}"
    state = {f"{name}.lokr_w1": w1, f"{name}.lokr_w2_a": w2a, f"{name}.lokr_w2_b": w2b, f"{name}.alpha": torch.tensor(1.0)}
    weight = model.unet.get_parameter(LINEAR + ".weight")
    expected = weight + 0.5 * torch.kron(w1, w2a @ w2b)  # alpha / rank = 1 / 2
    assert_patches_exactly(model.unet, apply_lora(state, model=model).model.load(), {LINEAR + ".weight": expected})


def test_lokr_conv_with_whole_factors_ignores_alpha(handles):
    model, _ = handles
    w1, w2 = rand(2, 4, seed=21), rand(16, 8, 3, 3, seed=22)
    name = f"lora_unet_{underscored(CONV)}"
    state = {f"{name}.lokr_w1": w1, f"{name}.lokr_w2": w2, f"{name}.alpha": torch.tensor(4.0)}
    weight = model.unet.get_parameter(CONV + ".weight")
    expected = weight.clone()
    for a in range(2):  # kron over the channel axes: block (a, b) of the kernel is w1[a, b] · w2
        for b in range(4):
            expected[a * 16 : (a + 1) * 16, b * 8 : (b + 1) * 8] += w1[a, b] * w2
    assert_patches_exactly(model.unet, apply_lora(state, model=model).model.load(), {CONV + ".weight": expected})


@pytest.mark.parametrize(
    ("down_key", "up_key"),
    [("lora_A.weight", "lora_B.weight"), ("lora.down.weight", "lora.up.weight"),
     ("lora_linear_layer.down.weight", "lora_linear_layer.up.weight")],
)  # fmt: skip
def test_diffusers_and_peft_keys_patch_unet_and_text_encoder(handles, down_key, up_key):
    model, clip = handles
    down, up, tdown, tup = rand(2, 64, seed=23), rand(32, 2, seed=24), rand(2, 64, seed=25), rand(64, 2, seed=26)
    state = {f"unet.{LINEAR_DIFFUSERS}.{down_key}": down, f"unet.{LINEAR_DIFFUSERS}.{up_key}": up,
             f"text_encoder.text_model.{TEXT}.{down_key}": tdown, f"text_encoder.text_model.{TEXT}.{up_key}": tup}  # fmt: skip
    result = apply_lora(state, model=model, clip=clip, strength_model=1.0, strength_clip=2.0)
    weight = model.unet.get_parameter(LINEAR + ".weight")
    assert_patches_exactly(model.unet, result.model.load(), {LINEAR + ".weight": weight + up @ down})
    text_weight = clip.encoder.model.get_parameter(TEXT + ".weight")
    text_view = patched_view(clip.encoder.model, result.clip.patches)
    assert_patches_exactly(clip.encoder.model, text_view, {TEXT + ".weight": text_weight + 2.0 * tup @ tdown})


def test_kohya_text_encoder_keys_change_the_encoding_and_leave_the_base_clip_alone(handles):
    model, clip = handles
    name = f"lora_te_text_model_{underscored(TEXT)}"
    state = {f"{name}.lora_down.weight": rand(4, 64, seed=27), f"{name}.lora_up.weight": rand(64, 4, seed=28)}
    before = clip.encode("a photo of a cat")[0]
    patched = apply_lora(state, model=model, clip=clip).clip
    assert not torch.allclose(patched.encode("a photo of a cat")[0], before)
    assert torch.equal(clip.encode("a photo of a cat")[0], before)


def test_full_difference_keys_patch_weight_and_bias(handles):
    model, _ = handles
    diff = rand(32, 64, seed=29)
    state = {f"lora_unet_{underscored(LINEAR)}.diff": diff, "lora_unet_out_2.diff_b": rand(4, seed=31),
             "lora_unet_time_embed_0.diff_b": torch.full((128,), 0.25)}  # fmt: skip
    expected = {LINEAR + ".weight": model.unet.get_parameter(LINEAR + ".weight") + diff,
                "out.2.bias": model.unet.get_parameter("out.2.bias") + state["lora_unet_out_2.diff_b"],
                "time_embed.0.bias": model.unet.get_parameter("time_embed.0.bias") + 0.25}  # fmt: skip
    assert_patches_exactly(model.unet, apply_lora(state, model=model).model.load(), expected)


def dora_expected(weight, delta, magnitude, *, axis: int, strength: float):
    """DoRA (Liu et al. 2024): V = W + ΔW; W' = m · V / ‖V‖ per input column (axis 1) or output row (axis 0),
    the norm written as a loop over slices; strength s blends W + s · (W' − W)."""
    merged = weight + delta
    norms = torch.stack([merged.select(axis, i).pow(2).sum().sqrt() for i in range(merged.shape[axis])])
    shape = [1] * merged.dim()
    shape[axis] = merged.shape[axis]
    decomposed = magnitude.reshape(shape) * merged / norms.reshape(shape)
    return weight + strength * (decomposed - weight)


@pytest.mark.parametrize(("axis", "strength"), [(1, 1.0), (1, 0.6), (0, -0.5)])
def test_dora_scale_renormalises_the_patched_linear_weight(handles, axis, strength):
    model, _ = handles
    name = f"lora_unet_{underscored(LINEAR)}"
    down, up = rand(2, 64, seed=40), rand(32, 2, seed=41)
    magnitude = torch.rand((1, 64) if axis == 1 else (32, 1), generator=torch.Generator().manual_seed(42)) + 0.5
    state = {f"{name}.lora_down.weight": down, f"{name}.lora_up.weight": up, f"{name}.alpha": torch.tensor(1.0),
             f"{name}.dora_scale": magnitude}  # fmt: skip
    weight = model.unet.get_parameter(LINEAR + ".weight")
    expected = dora_expected(weight, up @ down * 0.5, magnitude, axis=axis, strength=strength)
    result = apply_lora(state, model=model, strength_model=strength)
    assert result.match.unmatched == ()
    assert_patches_exactly(model.unet, result.model.load(), {LINEAR + ".weight": expected})


def test_dora_scale_on_a_conv_layer_normalises_each_input_channel_over_its_kernels(handles):
    model, _ = handles
    name = f"lora_unet_{underscored(CONV)}"
    down, up = rand(4, 32, 3, 3, seed=43), rand(32, 4, 1, 1, seed=44)
    magnitude = torch.rand(1, 32, 1, 1, generator=torch.Generator().manual_seed(45)) + 0.5
    state = {f"{name}.lora_down.weight": down, f"{name}.lora_up.weight": up, f"{name}.dora_scale": magnitude}
    weight = model.unet.get_parameter(CONV + ".weight")
    delta = (up.flatten(1) @ down.flatten(1)).reshape(weight.shape)
    expected = dora_expected(weight, delta, magnitude, axis=1, strength=1.0)
    assert_patches_exactly(model.unet, apply_lora(state, model=model).model.load(), {CONV + ".weight": expected})


def test_a_dora_scale_that_fits_no_axis_is_refused_naming_the_layer(handles):
    model, _ = handles
    name = f"lora_unet_{underscored(LINEAR)}"
    state = {f"{name}.lora_down.weight": rand(2, 64, seed=46), f"{name}.lora_up.weight": rand(32, 2, seed=47),
             f"{name}.dora_scale": torch.ones(1, 7)}  # fmt: skip
    with pytest.raises(LoraFormatError, match=f"{name} does not fit {LINEAR}.weight.*dora_scale"):
        apply_lora(state, model=model)


def test_keys_that_patch_nothing_are_reported_with_every_key_named(handles):
    model, _ = handles
    good = f"lora_unet_{underscored(LINEAR)}"
    state = {f"{good}.lora_down.weight": rand(2, 64, seed=32), f"{good}.lora_up.weight": rand(32, 2, seed=33),
             f"{good}.scale_weight": torch.ones(32, 1), "lora_unet_no_such_layer.lora_down.weight": rand(2, 8, seed=34),
             "lora_unet_no_such_layer.lora_up.weight": rand(8, 2, seed=35), "lora_unet_half_only.lora_down.weight": torch.ones(1, 1),
             "training_step": torch.tensor(3)}  # fmt: skip
    result = apply_lora(state, model=model)
    assert result.match.unmatched == tuple(sorted([
        f"{good}.scale_weight", "lora_unet_no_such_layer.lora_down.weight", "lora_unet_no_such_layer.lora_up.weight",
        "lora_unet_half_only.lora_down.weight", "training_step"]))  # fmt: skip
    assert result.match.describe_unmatched().startswith("5 LoRA keys patch nothing: ")
    assert len(result.model.patches) == 1


def test_a_lora_for_another_model_is_refused_naming_its_keys(handles):
    model, _ = handles
    state = {"lora_unet_label_emb_0_0.lora_down.weight": torch.ones(2, 2816), "lora_unet_label_emb_0_0.lora_up.weight": torch.ones(8, 2)}
    with pytest.raises(LoraFormatError, match="none of its 2 keys.*lora_unet_label_emb_0_0.lora_down.weight"):
        apply_lora(state, model=model)


def test_factors_that_do_not_fit_the_layer_are_refused_naming_the_layer(handles):
    model, _ = handles
    name = f"lora_unet_{underscored(LINEAR)}"
    state = {f"{name}.lora_down.weight": torch.ones(2, 63), f"{name}.lora_up.weight": torch.ones(32, 2)}
    with pytest.raises(LoraFormatError, match=f"{name} does not fit {LINEAR}.weight"):
        apply_lora(state, model=model)


def test_a_file_written_to_disk_reads_back_through_the_loader_node(tmp_path: Path, handles):
    name = f"lora_unet_{underscored(LINEAR)}"
    state = {f"{name}.lora_down.weight": rand(2, 64, seed=36).half(), f"{name}.lora_up.weight": rand(32, 2, seed=37).half()}
    save_file(state, str(tmp_path / "l.safetensors"))
    model, _ = handles
    view = apply_lora(read_state_dict(tmp_path / "l.safetensors"), model=model).model.load()
    weight = model.unet.get_parameter(LINEAR + ".weight")
    expected = weight + state[f"{name}.lora_up.weight"].float() @ state[f"{name}.lora_down.weight"].float()
    torch.testing.assert_close(view.get_parameter(LINEAR + ".weight"), expected)
