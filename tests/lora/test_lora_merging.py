"""LoraMerge + LoraSave: two LoRAs → one kohya file, exact by concatenation, best rank-k by SVD."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from latentloom.api import NodeInputError
from latentloom.runtime.checkpoint import read_state_dict
from latentloom.runtime.lora.merging import lora_layers, merge_lora_layers, unet_namer

LINEAR = "input_blocks.1.1.transformer_blocks.0.attn2.to_q"  # 32 → 32
CONV = "output_blocks.0.0.in_layers.2"  # a 3×3 conv; its channels are read from the model
KOHYA_LINEAR = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_q"  # sd-scripts' name


def rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 0.1


@pytest.fixture(scope="module")
def two_loras(bench):
    """A kohya file (alpha, LDM names, a conv layer) and a PEFT file (no alpha, diffusers names)."""
    model, _, _ = bench.load()
    conv = model.unet.get_parameter(CONV + ".weight")
    out_ch, in_ch = conv.shape[:2]
    kohya = "lora_unet_" + LINEAR.replace(".", "_")
    kohya_conv = "lora_unet_" + CONV.replace(".", "_")
    a = {f"{kohya}.lora_down.weight": rand(4, 32, seed=1), f"{kohya}.lora_up.weight": rand(32, 4, seed=2),
         f"{kohya}.alpha": torch.tensor(2.0), f"{kohya_conv}.lora_down.weight": rand(2, in_ch, 3, 3, seed=3),
         f"{kohya_conv}.lora_up.weight": rand(out_ch, 2, 1, 1, seed=4), f"{kohya_conv}.alpha": torch.tensor(2.0)}  # fmt: skip
    peft = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_q"  # the same layer as LINEAR
    b = {f"{peft}.lora_A.weight": rand(3, 32, seed=5), f"{peft}.lora_B.weight": rand(32, 3, seed=6)}
    save_file(a, str(bench.lora_dir / "merge-a.safetensors"))
    save_file(b, str(bench.lora_dir / "merge-b.safetensors"))
    return a, b


def merged_delta(a, b, *, strength_a, strength_b) -> dict[str, torch.Tensor]:
    kohya = "lora_unet_" + LINEAR.replace(".", "_")
    kohya_conv = "lora_unet_" + CONV.replace(".", "_")
    peft = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_q"
    linear = strength_a * 0.5 * a[f"{kohya}.lora_up.weight"] @ a[f"{kohya}.lora_down.weight"]
    linear = linear + strength_b * b[f"{peft}.lora_B.weight"] @ b[f"{peft}.lora_A.weight"]
    conv = strength_a * (a[f"{kohya_conv}.lora_up.weight"].flatten(1) @ a[f"{kohya_conv}.lora_down.weight"].flatten(1))
    return {LINEAR + ".weight": linear, CONV + ".weight": conv}


def patched_by_saved(bench, result, name: str) -> dict[str, torch.Tensor]:
    model, _, _ = bench.load()
    (entry,) = result.ui["loras"]
    (patched,) = bench.run("LoraLoaderModelOnly", model=model, lora_name=entry["filename"], strength_model=1.0)
    view = patched.load()
    return {key: view.get_parameter(key) - model.unet.get_parameter(key) for key in (LINEAR + ".weight", CONV + ".weight")}


def test_concat_is_exact_and_its_rank_is_the_sum(bench, two_loras):
    a, b = two_loras
    (lora,) = bench.run("LoraMerge", model=bench.load()[0], lora_a="merge-a.safetensors", strength_a=0.7, lora_b="merge-b.safetensors",
                        strength_b=-1.2, mode="concat", rank=1)  # fmt: skip
    result = bench.run_result("LoraSave", lora=lora, filename_prefix="merged-concat")
    saved = read_state_dict(bench.lora_dir / result.ui["loras"][0]["filename"])
    assert saved[f"{KOHYA_LINEAR}.lora_down.weight"].shape == (7, 32) and float(saved[f"{KOHYA_LINEAR}.alpha"]) == 7.0
    assert {key.rsplit(".", 2)[0] for key in saved} == {KOHYA_LINEAR, "lora_unet_up_blocks_0_resnets_0_conv1"}
    deltas = patched_by_saved(bench, result, "concat")
    expected = merged_delta(a, b, strength_a=0.7, strength_b=-1.2)
    for key, delta in deltas.items():
        torch.testing.assert_close(delta.flatten(1), expected[key].flatten(1), atol=2e-3, rtol=2e-3)  # fp16 file


def test_svd_to_full_rank_is_exact_and_to_rank_k_leaves_the_eckart_young_error(bench, two_loras):
    a, b = two_loras
    model, _, _ = bench.load()
    namer = unet_namer(model.unet, model.unet.config)
    layers_a, layers_b = lora_layers(a, source="a", unet_name=namer), lora_layers(b, source="b", unet_name=namer)
    expected = merged_delta(a, b, strength_a=1.0, strength_b=1.0)[LINEAR + ".weight"]
    singular = torch.linalg.svdvals(expected)
    for rank in (7, 3):
        merged = merge_lora_layers(layers_a, layers_b, strength_a=1.0, strength_b=1.0, mode="svd", rank=rank)
        adapter = merged[KOHYA_LINEAR]
        assert adapter.rank == rank
        error = torch.linalg.matrix_norm(adapter.up @ adapter.down * (adapter.alpha / rank) - expected)
        torch.testing.assert_close(error, singular[rank:].square().sum().sqrt(), atol=1e-5, rtol=1e-4)
    (lora,) = bench.run("LoraMerge", model=bench.load()[0], lora_a="merge-a.safetensors", strength_a=1.0, lora_b="merge-b.safetensors",
                        strength_b=1.0, mode="svd", rank=2)  # fmt: skip
    saved = bench.run_result("LoraSave", lora=lora, filename_prefix="merged-svd")
    conv = patched_by_saved(bench, saved, "svd")[CONV + ".weight"]
    assert conv.dim() == 4  # a conv LoRA stays a conv LoRA: down [k, in, 3, 3], up [out, k, 1, 1]
    torch.testing.assert_close(conv.flatten(1), merged_delta(a, b, strength_a=1.0, strength_b=1.0)[CONV + ".weight"],
                               atol=2e-3, rtol=2e-3)  # rank 2 holds the rank-2 conv LoRA exactly  # fmt: skip


def test_lycoris_layers_are_refused_by_name(bench):
    name = "lora_unet_" + LINEAR.replace(".", "_")
    loha = {f"{name}.hada_w1_a": torch.ones(32, 2), f"{name}.hada_w1_b": torch.ones(2, 32),
            f"{name}.hada_w2_a": torch.ones(32, 2), f"{name}.hada_w2_b": torch.ones(2, 32)}  # fmt: skip
    save_file(loha, str(bench.lora_dir / "loha.safetensors"))
    with pytest.raises(NodeInputError, match=f"{name} holds hada_w1_a.*only LoRA/LoCon"):
        bench.run("LoraMerge", model=bench.load()[0], lora_a="merge-a.safetensors", strength_a=1.0, lora_b="loha.safetensors",
                  strength_b=1.0, mode="concat", rank=4)  # fmt: skip
