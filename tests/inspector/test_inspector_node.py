"""UNetBlockInspector on the tiny SD1.5-layout checkpoint: its report, its pictures, its token labels, its errors."""

from __future__ import annotations

import json

import pytest
import torch

from latentloom.api import NodeInputError
from latentloom.diffusion.sampling import sample_sigmas
from nodes.inspector import VIEWS

PROMPT = "a horse in a field, (sunset:1.2)"


@pytest.fixture(scope="module")
def conditioning(bench, loaded):
    _, clip, _ = loaded
    encode = bench.registry.get("CLIPTextEncode")
    positive = encode.execute(None, text=PROMPT, clip=clip)[0]
    negative = encode.execute(None, text="blurry", clip=clip)[0]
    return positive, negative


def inspect(bench, ctx, loaded, conditioning, **changes):
    model, _, vae = loaded
    positive, negative = conditioning
    latent = {"samples": torch.randn(1, 4, 6, 8, generator=torch.Generator().manual_seed(2))}
    inputs = dict(model=model, positive=positive, latent=latent, seed=5, scheduler="karras", steps=10, step=4,
                  sigma=0.0, blocks="all", tokens="", resolution="all", view="overview", negative=negative,
                  vae=vae, prompt_text=PROMPT)  # fmt: skip
    return bench.run("UNetBlockInspector", ctx, **(inputs | changes))


@pytest.fixture(scope="module")
def result(bench, loaded, conditioning):
    return inspect(bench, None, loaded, conditioning)


def test_the_report_is_json_and_describes_every_block(result, loaded) -> None:
    [report] = result.ui["inspection"]
    text = json.dumps(report, allow_nan=False)
    assert json.loads(text) == report
    assert report["kind"] == "unet_inspection"
    names = [b["name"] for b in report["architecture"]["blocks"]]
    assert names == [b["name"] for b in report["blocks"]]
    assert len(names) == len(loaded[0].unet.input_blocks) + 1 + len(loaded[0].unet.output_blocks)
    assert report["architecture"]["parameters"] + sum(
        p.numel() for m in (loaded[0].unet.time_embed, loaded[0].unet.out) for p in m.parameters()
    ) == sum(p.numel() for p in loaded[0].unet.parameters())
    for block in report["blocks"]:
        assert set(block["positive"]) == {"mean", "std", "norm", "abs_max"} and "negative" in block
    assert {b["name"] for b in report["blocks"] if b["attention_entropy"] is not None} == {
        "input_blocks.1", "middle_block", "output_blocks.2", "output_blocks.3"
    }
    assert [s["target"] for s in report["skips"]] == [f"output_blocks.{i}" for i in range(4)]


def test_the_noise_level_is_the_kSampler_sigma_of_that_step(result, loaded) -> None:
    [report] = result.ui["inspection"]
    sigmas = sample_sigmas(loaded[0].schedule, sampler="euler", scheduler="karras", steps=10)
    assert report["noise"]["sigma"] == pytest.approx(float(sigmas[4]))
    assert report["noise"] | {"sigma": None, "timestep": None} == {
        "sigma": None, "timestep": None, "step": 4, "steps": 10, "scheduler": "karras"
    }


def test_tokens_are_labelled_with_their_text(result) -> None:
    [report] = result.ui["inspection"]
    tokens = [t["text"] for t in report["attention"]["tokens"]]
    assert tokens == ["a", "horse", "in", "a", "field", ",", "sunset"]  # the prompt's words, in order
    top = report["attention"]["layers"][0]["top_tokens"]
    assert all(isinstance(t["text"], str) and t["text"] for t in top)


def test_every_view_is_saved_for_the_canvas_and_one_is_the_output(result, bench) -> None:
    entries = result.ui["images"]
    assert [e["view"] for e in entries] == list(VIEWS)
    for entry in entries:
        assert entry["type"] == "temp" and (bench.folders.temp_dir / entry["subfolder"] / entry["filename"]).is_file()
    [image] = result.outputs
    assert image.ndim == 4 and image.shape[0] == 1 and image.shape[-1] == 3
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert result.ui["inspection"][0]["views"] == list(VIEWS)


def test_the_chosen_view_is_the_image_output(bench, ctx, loaded, conditioning) -> None:
    architecture = inspect(bench, ctx, loaded, conditioning, view="architecture").outputs[0]
    heat_maps = inspect(bench, ctx, loaded, conditioning, view="token heat maps", tokens="horse, sunset").outputs[0]
    assert architecture.shape != heat_maps.shape


def test_tokens_by_word_and_by_position(bench, ctx, loaded, conditioning) -> None:
    result = inspect(bench, ctx, loaded, conditioning, tokens="horse, 0, field")
    tokens = result.ui["inspection"][0]["attention"]["tokens"]
    assert [(t["position"], t["text"]) for t in tokens] == [(2, "horse"), (0, "<start>"), (5, "field")]


def test_a_sigma_overrides_the_step(bench, ctx, loaded, conditioning) -> None:
    report = inspect(bench, ctx, loaded, conditioning, sigma=3.5).ui["inspection"][0]
    assert report["noise"]["sigma"] == 3.5 and report["noise"]["step"] is None


@pytest.mark.parametrize(
    ("changes", "input_name", "message"),
    [
        ({"blocks": "IN07"}, "blocks", "names no block"),
        ({"tokens": "zebra"}, "tokens", "not in the prompt"),
        ({"tokens": "200"}, "tokens", "past the conditioning"),
        ({"prompt_text": "a much longer prompt " * 20}, "prompt_text", "same prompt"),
        ({"resolution": "1/8"}, "resolution", "runs at 1/1, 1/2"),
        ({"step": 10}, "step", "not one of the 10 steps"),
        ({"model": "not a model"}, "model", "expects a MODEL"),
    ],
)
def test_bad_inputs_name_the_input(bench, ctx, loaded, conditioning, changes, input_name, message) -> None:
    with pytest.raises(NodeInputError, match=message) as raised:
        inspect(bench, ctx, loaded, conditioning, **changes)
    assert raised.value.input_name == input_name


def test_without_prompt_text_or_vae_tokens_are_numbered(bench, ctx, loaded, conditioning) -> None:
    result = inspect(bench, ctx, loaded, conditioning, prompt_text="", vae=None, negative=None, tokens="")
    report = result.ui["inspection"][0]
    assert [t["text"] for t in report["attention"]["tokens"]] == [f"#{i}" for i in range(1, 9)]
    assert "negative" not in report["blocks"][0]
    with pytest.raises(NodeInputError, match="needs the prompt"):
        inspect(bench, ctx, loaded, conditioning, prompt_text="", tokens="horse")


def test_the_model_handle_is_left_as_it_was(bench, ctx, loaded, conditioning) -> None:
    model = loaded[0]
    before = {k: v.clone() for k, v in model.unet.state_dict().items()}
    inspect(bench, ctx, loaded, conditioning)
    assert model.patches == ()
    assert all(torch.equal(v, before[k]) for k, v in model.unet.state_dict().items())
