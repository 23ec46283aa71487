"""Merge nodes: merged weights equal ComfyUI's formulas; the inputs are never changed."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from lora_bench import CHECKPOINT_B, CHECKPOINT_C
from support.tiny_sd import build_unet

from latentloom.api import NodeInputError
from latentloom.runtime import merge
from latentloom.runtime.lora.weights import patched_view


def params(module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in module.named_parameters()}


def assert_each(view, expected) -> None:
    state = dict(view.named_parameters())
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(state[key], value, rtol=1e-5, atol=1e-6, msg=key)


def test_merge_simple_add_and_subtract_follow_their_formulas(bench):
    (a, _, _), (b, _, _) = bench.load(), bench.load(CHECKPOINT_B)
    wa, wb = params(a.unet), params(b.unet)
    (simple,) = bench.run("ModelMergeSimple", model1=a, model2=b, ratio=0.3)
    assert_each(simple.load(), {k: 0.3 * wa[k] + 0.7 * wb[k] for k in wa})
    (added,) = bench.run("ModelMergeAdd", model1=a, model2=b)
    assert_each(added.load(), {k: wa[k] + wb[k] for k in wa})
    (subtracted,) = bench.run("ModelMergeSubtract", model1=a, model2=b, multiplier=-2.5)
    assert_each(subtracted.load(), {k: -2.5 * (wa[k] - wb[k]) for k in wa})
    assert all(torch.equal(value, wa[key]) for key, value in a.unet.named_parameters())  # model1 untouched
    assert all(torch.equal(value, wb[key]) for key, value in b.unet.named_parameters())


def test_add_difference_nests_a_subtract_inside_an_add(bench):
    (a, _, _), (b, _, _), (c, _, _) = bench.load(), bench.load(CHECKPOINT_B), bench.load(CHECKPOINT_C)
    wa, wb, wc = params(a.unet), params(b.unet), params(c.unet)
    (difference,) = bench.run("ModelMergeSubtract", model1=b, model2=c, multiplier=0.75)
    (result,) = bench.run("ModelMergeAdd", model1=a, model2=difference)
    assert_each(result.load(), {k: wa[k] + (wb[k] - wc[k]) * 0.75 for k in wa})


def test_merge_blocks_picks_the_ratio_by_block(bench):
    (a, _, _), (b, _, _) = bench.load(), bench.load(CHECKPOINT_B)
    wa, wb = params(a.unet), params(b.unet)
    (merged,) = bench.run("ModelMergeBlocks", model1=a, model2=b, input=0.2, middle=0.5, out=0.9)

    def ratio(key: str) -> float:  # ComfyUI: time_embed takes the input ratio, the final out.* the out ratio
        if key.startswith(("input_blocks.", "time_embed.")):
            return 0.2
        return 0.5 if key.startswith("middle_block.") else 0.9

    assert_each(merged.load(), {k: ratio(k) * wa[k] + (1 - ratio(k)) * wb[k] for k in wa})


def test_mbw_has_25_block_weights_and_applies_each_to_its_block(bench):
    (a, _, _), (b, _, _) = bench.load(), bench.load(CHECKPOINT_B)
    wa, wb = params(a.unet), params(b.unet)
    node = bench.registry.get("ModelMergeBlockWeighted")
    names = [i.name for i in node.schema.required[2:]]
    assert names == ["time_embed", *[f"IN{i:02d}" for i in range(12)], "M00", *[f"OUT{i:02d}" for i in range(12)], "out"]
    weights = {name: 1.0 for name in names} | {"IN01": 0.1, "IN02": 0.4, "M00": 0.5, "OUT03": 0.7,
                                                 "time_embed": 0.3, "out": 0.6}  # fmt: skip
    (merged,) = bench.run("ModelMergeBlockWeighted", model1=a, model2=b, **weights)

    def ratio(key: str) -> float:
        block, index = key.split(".")[0], key.split(".")[1]
        named = {"time_embed": "time_embed", "out": "out", "middle_block": "M00"}.get(block)
        if named is None:
            named = ("IN" if block == "input_blocks" else "OUT") + f"{int(index):02d}"
        return weights[named]

    expected = {k: ratio(k) * wa[k] + (1 - ratio(k)) * wb[k] for k in wa}
    assert_each(merged.load(), expected)
    assert not torch.equal(expected["input_blocks.1.0.in_layers.2.weight"], wa["input_blocks.1.0.in_layers.2.weight"])


def test_clip_merge_simple_merges_the_text_encoder_weights(bench):
    (_, clip_a, _), (_, clip_b, _) = bench.load(), bench.load(CHECKPOINT_B)
    wa, wb = params(clip_a.encoder.model), params(clip_b.encoder.model)
    (merged,) = bench.run("CLIPMergeSimple", clip1=clip_a, clip2=clip_b, ratio=0.25)
    assert_each(patched_view(merged.encoder.model, merged.patches), {k: 0.25 * wa[k] + 0.75 * wb[k] for k in wa})
    assert not torch.allclose(merged.encode("a dog")[0], clip_a.encode("a dog")[0])


def test_clip_subtract_and_add_follow_comfyui_formulas(bench):
    (_, clip_a, _), (_, clip_b, _) = bench.load(), bench.load(CHECKPOINT_B)
    wa, wb = params(clip_a.encoder.model), params(clip_b.encoder.model)
    (subtracted,) = bench.run("CLIPSubtract", clip1=clip_a, clip2=clip_b, multiplier=0.4)
    assert_each(patched_view(subtracted.encoder.model, subtracted.patches), {k: 0.4 * (wa[k] - wb[k]) for k in wa})
    (added,) = bench.run("CLIPAdd", clip1=clip_a, clip2=clip_b)
    assert_each(patched_view(added.encoder.model, added.patches), {k: wa[k] + wb[k] for k in wa})


def test_a_merge_reads_the_second_model_with_its_own_patches(bench):
    (a, _, _), (b, _, _), (c, _, _) = bench.load(), bench.load(CHECKPOINT_B), bench.load(CHECKPOINT_C)
    (b_with_c,) = bench.run("ModelMergeSimple", model1=b, model2=c, ratio=0.5)
    (result,) = bench.run("ModelMergeSimple", model1=a, model2=b_with_c, ratio=0.5)
    wa, wb, wc = params(a.unet), params(b.unet), params(c.unet)
    assert_each(result.load(), {k: 0.5 * wa[k] + 0.25 * wb[k] + 0.25 * wc[k] for k in wa})


def test_merging_different_architectures_names_the_problem(bench):
    a, _, _ = bench.load()
    other = replace(a, unet=build_unet(replace(a.unet.config, model_channels=64), seed=0))
    with pytest.raises(NodeInputError, match="different architectures.*different shapes"):
        bench.run("ModelMergeSimple", model1=a, model2=other, ratio=0.5)


def test_a_merge_holds_references_not_copies_until_it_is_loaded(bench):
    (a, _, _), (b, _, _) = bench.load(), bench.load(CHECKPOINT_B)
    (merged,) = bench.run("ModelMergeSimple", model1=a, model2=b, ratio=0.5)
    (patch,) = merged.patches
    assert isinstance(patch, merge.MergePatch) and patch.other is b.unet and merged.unet is a.unet
    assert all(isinstance(c, float) for pair in patch.coefficients.values() for c in pair)


def test_model_merge_sd1_takes_comfyui_prefix_inputs_and_the_longest_prefix_wins(bench):
    (a, _, _), (b, _, _) = bench.load(), bench.load(CHECKPOINT_B)
    wa, wb = params(a.unet), params(b.unet)
    node = bench.registry.get("ModelMergeSD1")
    ratios = {spec.name: 1.0 for spec in node.schema.required[2:]}
    ratios.update({"time_embed.": 0.1, "input_blocks.1.": 0.3, "middle_block.1.": 0.6, "output_blocks.1.": 0.8})
    (merged,) = bench.run("ModelMergeSD1", model1=a, model2=b, **ratios)

    def ratio(key: str) -> float:  # by hand: "input_blocks.1." never matches input_blocks.10/11 (the dot)
        named = [prefix for prefix in ratios if key.startswith(prefix)]
        assert len(named) <= 1, key
        return ratios[named[0]] if named else 0.1  # unnamed keys take the first input's ratio, as in ComfyUI

    expected = {k: ratio(k) * wa[k] + (1 - ratio(k)) * wb[k] for k in wa}
    assert any(ratio(k) == 0.3 for k in wa) and any(ratio(k) == 0.8 for k in wa)
    assert_each(merged.load(), expected)
