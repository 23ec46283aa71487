"""A UNet whose cross-attention is wired by hand to attend to one token in one region: that token's heat map
must light up exactly there, in the captured maps, in the per-resolution and combined maps, in the drawn
heat map, and in the node's report."""

from __future__ import annotations

import json

import pytest
import torch
from inspector_rig import RIGGED_LAYER, region_latent, rigged_context, rigged_unet

from latentloom.diffusion.inspect import views
from latentloom.diffusion.inspect.capture import CaptureOptions, InspectionObserver
from latentloom.diffusion.schedules import DiscreteSchedule
from latentloom.runtime.detect import PredictionType
from latentloom.runtime.devices import DeviceManager
from latentloom.runtime.handles import ModelHandle

HEIGHT, WIDTH, TOKENS, CHOSEN = 8, 12, 9, 3
REGION = (slice(2, 6), slice(3, 8))  # rows 2-5, columns 3-7 of the latent


@pytest.fixture(scope="module")
def unet():
    return rigged_unet()


def region_mask() -> torch.Tensor:
    mask = torch.zeros(HEIGHT, WIDTH, dtype=torch.bool)
    mask[REGION] = True
    return mask


@pytest.fixture(scope="module")
def capture(unet):
    observer = InspectionObserver(CaptureOptions(feature_maps=False))
    context = rigged_context(TOKENS, CHOSEN, unet.config.context_dim)
    with torch.inference_mode():
        unet(region_latent(HEIGHT, WIDTH, REGION), torch.tensor([100.0]), context, observer=observer)
    return observer.passes[0]


def test_the_rigged_layer_attends_to_the_chosen_token_exactly_in_the_region(capture) -> None:
    layer = next(a for a in capture.attention if a.layer == RIGGED_LAYER)
    chosen = layer.token_maps[0, CHOSEN]
    inside = region_mask()
    assert float(chosen[inside].min()) > 0.999
    assert float(chosen[~inside].max()) < 1e-3
    others = torch.cat([layer.token_maps[0, :CHOSEN], layer.token_maps[0, CHOSEN + 1 :]])
    assert float(others[:, inside].max()) < 1e-3  # inside the region nothing else is attended to
    assert torch.allclose(others[:, ~inside], torch.full_like(others[:, ~inside], 1 / (TOKENS - 1)), atol=1e-3)
    # the share of attention the token gets is the share of the image the region covers
    assert float(layer.token_mass[0, CHOSEN]) == pytest.approx(float(inside.float().mean()), abs=1e-3)


def test_the_per_resolution_and_combined_maps_light_up_exactly_there(capture) -> None:
    inside = region_mask()
    for maps in (capture.level_maps((HEIGHT, WIDTH))[0, CHOSEN], capture.combined_maps()[0, CHOSEN]):
        heat = views.normalized(maps)
        assert torch.equal(heat > 0.5, inside)
        assert float(heat[inside].min()) > 0.99 and float(heat[~inside].max()) < 0.01


def test_the_drawn_heat_map_is_hot_over_the_region_and_cold_elsewhere(capture) -> None:
    background = torch.full((HEIGHT * 8, WIDTH * 8, 3), 0.5)
    heat = views.normalized(capture.combined_maps()[0, CHOSEN])
    overlay = views.heat_overlay(background, heat)
    upsampled = views.resized(heat, (HEIGHT * 8, WIDTH * 8), smooth=True)
    inside = region_mask().repeat_interleave(8, 0).repeat_interleave(8, 1)
    core = torch.zeros_like(inside)
    core[2 * 8 + 4 : 6 * 8 - 4, 3 * 8 + 4 : 8 * 8 - 4] = True  # the region minus half a latent pixel
    far = ~torch.nn.functional.max_pool2d(inside[None, None].float(), 17, stride=1, padding=8)[0, 0].bool()
    assert float(upsampled[core].min()) > 0.9 and float(upsampled[far].max()) < 0.1
    brightness = overlay.sum(-1)
    assert float(brightness[core].mean()) > float(brightness[far].mean()) + 0.5  # bright yellow over grey


def test_the_inspector_node_reports_the_region_token(bench, ctx, unet) -> None:
    model = ModelHandle(unet=unet, schedule=DiscreteSchedule.scaled_linear(), prediction_type=PredictionType.EPS,
                        devices=DeviceManager(device="cpu"))  # fmt: skip
    conditioning = [[rigged_context(TOKENS, CHOSEN, unet.config.context_dim), {}]]
    latent = {"samples": region_latent(HEIGHT, WIDTH, REGION)}
    result = bench.run(
        "UNetBlockInspector", ctx, model=model, positive=conditioning, latent=latent, seed=0, scheduler="normal",
        steps=20, step=0, sigma=0.05, blocks="IN01", tokens=f"1, {CHOSEN}", resolution="1/1", view="token heat maps",
    )  # fmt: skip
    [report] = result.ui["inspection"]
    json.dumps(report, allow_nan=False)
    rigged = next(layer for layer in report["attention"]["layers"] if layer["layer"] == RIGGED_LAYER)
    assert rigged["top_tokens"][0]["position"] == CHOSEN
    assert rigged["top_tokens"][0]["mass"] == pytest.approx(20 / 96, abs=2e-3)
    tokens = {t["position"]: t for t in report["attention"]["tokens"]}
    assert tokens[CHOSEN]["concentration"] > tokens[1]["concentration"]
    image = result.outputs[0]
    assert image.shape[0] == 1 and image.shape[-1] == 3
