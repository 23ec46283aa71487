"""CLIPTextEncode, CLIPSetLastLayer, ConditioningCombine, ConditioningSetArea, and CONDITIONING → Cond."""

from __future__ import annotations

import pytest
import torch
from support.checkpoint_factory import TINY_TEXT_LAYERS, TINY_TEXT_WIDTH

from latentloom.api import NodeInputError
from nodes.conds import to_conds

CPU = torch.device("cpu")


def test_clip_text_encode_is_the_handles_encoding_with_the_pooled_output(bench):
    _, clip, _ = bench.loaded
    (conditioning,) = bench.run("CLIPTextEncode", text="a (red:1.3) cube", clip=clip)
    [[embedding, options]] = conditioning
    cond, pooled = clip.encode("a (red:1.3) cube")
    assert torch.equal(embedding, cond) and torch.equal(options["pooled_output"], pooled)
    assert embedding.shape == (1, 77, TINY_TEXT_WIDTH)


def test_clip_text_encode_reads_embeddings_from_the_embeddings_folder(bench):
    _, clip, _ = bench.loaded
    folder = bench.folders.roots("embeddings")[0]
    folder.mkdir(parents=True, exist_ok=True)
    vectors = torch.randn(2, TINY_TEXT_WIDTH)
    torch.save({"string_to_param": {"*": vectors}}, folder / "style.pt")
    (with_embedding,) = bench.run("CLIPTextEncode", text="a cube, embedding:style", clip=clip)
    (without,) = bench.run("CLIPTextEncode", text="a cube", clip=clip)
    assert not torch.equal(with_embedding[0][0], without[0][0])
    # A missing embedding is logged and left out of the prompt, as ComfyUI does.
    (missing,) = bench.run("CLIPTextEncode", text="a cube, embedding:missing", clip=clip)
    (plain,) = bench.run("CLIPTextEncode", text="a cube, ", clip=clip)
    assert torch.equal(missing[0][0], plain[0][0])


def test_clip_set_last_layer_reads_an_earlier_layer(bench):
    _, clip, _ = bench.loaded
    (skipped,) = bench.run("CLIPSetLastLayer", clip=clip, stop_at_clip_layer=-2)
    assert skipped.clip_skip == 2 and clip.clip_skip == 1 and skipped.encoder is clip.encoder
    expected, _ = clip.encoder.encode("a cube", clip_skip=2)
    (conditioning,) = bench.run("CLIPTextEncode", text="a cube", clip=skipped)
    assert torch.equal(conditioning[0][0], expected.cpu())
    with pytest.raises(NodeInputError, match="input 'stop_at_clip_layer'"):
        bench.run("CLIPSetLastLayer", clip=clip, stop_at_clip_layer=-(TINY_TEXT_LAYERS + 1))


def entry(value: float, **options) -> list:
    return [torch.full((1, 77, 8), value), options]


def test_conditioning_combine_concatenates_the_lists(bench):
    first, second = [entry(1.0)], [entry(2.0), entry(3.0)]
    (combined,) = bench.run("ConditioningCombine", conditioning_1=first, conditioning_2=second)
    assert [float(e[0][0, 0, 0]) for e in combined] == [1.0, 2.0, 3.0]
    with pytest.raises(NodeInputError, match="input 'conditioning_2'"):
        bench.run("ConditioningCombine", conditioning_1=first, conditioning_2=[])


def test_conditioning_set_area_stores_latent_pixels_and_leaves_the_input_alone(bench):
    original = [entry(1.0, pooled_output=torch.zeros(1, 8))]
    (areas,) = bench.run("ConditioningSetArea", conditioning=original, width=256, height=128, x=64, y=32, strength=0.7)
    [[embedding, options]] = areas
    assert embedding is original[0][0]
    assert options["area"] == (16, 32, 4, 8)  # (h, w, y, x) / 8
    assert options["strength"] == 0.7 and options["set_area_to_bounds"] is False
    assert "pooled_output" in options and "area" not in original[0][1]


def test_conditioning_becomes_conds_with_area_mask_strength_and_timing():
    mask = torch.ones(1, 16, 16)
    conditioning = [
        entry(1.0, pooled_output=torch.zeros(1, 8)),
        entry(2.0, area=(4, 8, 2, 0), strength=0.5, set_area_to_bounds=False),
        entry(3.0, area=("percentage", 0.5, 0.25, 0.0, 0.5)),
        entry(4.0, mask=mask, mask_strength=0.3, set_area_to_bounds=True, start_percent=0.2, end_percent=0.8),
    ]
    plain, area, fraction, masked = to_conds(conditioning, "positive", device=CPU)
    assert plain.area is None and plain.pooled is None and plain.strength == 1.0
    assert area.area == (4, 8, 2, 0) and area.strength == 0.5
    assert fraction.area is None and fraction.area_fraction == (0.5, 0.25, 0.0, 0.5)
    assert torch.equal(masked.mask, mask) and masked.mask_strength == 0.3 and masked.mask_bounds_area
    assert (masked.start_percent, masked.end_percent) == (0.2, 0.8)
    assert torch.equal(masked.embedding, conditioning[3][0])


def test_conditioning_options_this_sampler_cannot_honour_are_refused_by_name():
    with pytest.raises(NodeInputError, match=r"input 'negative': entry 0 .* \['control'\]"):
        to_conds([entry(1.0, control=object())], "negative", device=CPU)
    with pytest.raises(NodeInputError, match="input 'positive': entry 0: 'area'"):
        to_conds([entry(1.0, area=(1, 2))], "positive", device=CPU)
    with pytest.raises(NodeInputError, match="input 'positive'"):
        to_conds([torch.zeros(1, 77, 8)], "positive", device=CPU)
