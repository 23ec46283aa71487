"""Capturing a forward pass: what is recorded, that it is reduced as promised, and that it changes nothing."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from latentloom.diffusion.inspect.capture import CaptureOptions, InspectionObserver
from latentloom.diffusion.inspect.patch import ObserverChain, ObserverPatch, patch_observer
from latentloom.diffusion.observe import AttentionCall, UNetObserver
from latentloom.diffusion.schedules import DiscreteSchedule
from latentloom.diffusion.unet_call import UNetCall
from latentloom.runtime.detect import PredictionType
from latentloom.runtime.devices import DeviceManager
from latentloom.runtime.handles import ModelHandle

SIZE = (8, 12)


def inputs(unet, *, batch: int = 2, tokens: int = 7):
    generator = torch.Generator().manual_seed(11)
    x = torch.randn(batch, 4, *SIZE, generator=generator)
    context = torch.randn(batch, tokens, unet.config.context_dim, generator=generator)
    return x, torch.tensor([321.0]), context


def run(unet, observer=None, **kwargs):
    x, t, context = inputs(unet, **kwargs)
    with torch.inference_mode():
        return unet(x, t, context, observer=observer)


def test_observing_everything_leaves_the_output_bit_for_bit_unchanged(tiny_unet) -> None:
    plain = run(tiny_unet)
    observer = InspectionObserver(CaptureOptions(keep_probabilities=True))
    observed = run(tiny_unet, observer)
    assert torch.equal(plain, observed)
    assert len(observer.passes) == 1


def test_a_half_precision_unet_is_unchanged_and_captured_in_float32(tiny_unet) -> None:
    half = copy.deepcopy(tiny_unet).half()
    x, t, context = inputs(tiny_unet)
    observer = InspectionObserver(CaptureOptions(keep_probabilities=True))
    with torch.inference_mode():
        plain = half(x.half(), t, context.half())
        observed = half(x.half(), t, context.half(), observer=observer)
    assert torch.equal(plain, observed)
    [capture] = observer.passes
    assert all(math.isfinite(v) for b in capture.blocks.values() for v in b.statistics.std)
    assert {capture.blocks["middle_block"].pca.dtype, capture.attention[0].probabilities.dtype} == {torch.float32}


def test_attention_probabilities_sum_to_one_over_tokens(tiny_unet) -> None:
    observer = InspectionObserver(CaptureOptions(keep_probabilities=True))
    run(tiny_unet, observer, tokens=7)
    [capture] = observer.passes
    assert len(capture.attention) == 4  # input_blocks.1, middle_block, output_blocks.2 and .3
    for layer in capture.attention:
        probabilities = layer.probabilities  # (batch, heads, queries, tokens)
        assert probabilities.shape == (2, layer.heads, layer.size[0] * layer.size[1], 7)
        assert torch.allclose(probabilities.sum(-1), torch.ones(()), atol=1e-5)
        assert float(probabilities.min()) >= 0
        # the kept maps are the same probabilities averaged over heads, laid out on the query grid
        expected = probabilities.mean(1).transpose(1, 2).unflatten(2, layer.size)
        assert torch.allclose(layer.token_maps, expected, atol=1e-6)
        assert torch.allclose(layer.token_maps.sum(1), torch.ones(()), atol=1e-5)


def test_maps_per_resolution_average_the_layers_at_that_size(tiny_unet) -> None:
    observer = InspectionObserver(CaptureOptions(tokens=(1, 4)))
    run(tiny_unet, observer)
    [capture] = observer.passes
    assert capture.attention_sizes == [(8, 12), (4, 6)]
    fine = [a.token_maps for a in capture.attention if a.size == (8, 12)]
    assert capture.layers_at((8, 12)) == len(fine) == 3
    assert torch.allclose(capture.level_maps((8, 12)), sum(fine) / 3, atol=1e-7)
    assert capture.level_maps((8, 12)).shape == (2, 2, 8, 12)
    combined = capture.combined_maps()
    assert combined.shape == (2, 2, 8, 12)
    # a coarse map resized to the fine grid keeps its mean, so the combined map keeps the layers' mean mass
    means = [a.token_maps.mean((2, 3)) for a in capture.attention]
    assert torch.allclose(combined.mean((2, 3)), sum(means) / len(means), atol=1e-5)
    with pytest.raises(KeyError, match="8x12, 4x6"):
        capture.level_maps((2, 3))


def test_options_limit_what_is_kept(tiny_unet) -> None:
    observer = InspectionObserver(
        CaptureOptions(map_blocks=frozenset({"middle_block"}), tokens=(2,), layer_maps=False, rows=1)
    )
    run(tiny_unet, observer)
    [capture] = observer.passes
    kept = {name for name, block in capture.blocks.items() if block.magnitude is not None}
    assert kept == {"middle_block"}
    assert capture.blocks["middle_block"].magnitude.shape == (1, 4, 6)
    assert capture.blocks["middle_block"].pca.shape == (1, 4, 6, 3)
    assert len(capture.blocks) == 9 and all(len(b.statistics.mean) == 1 for b in capture.blocks.values())
    assert all(a.token_maps is None and a.probabilities is None for a in capture.attention)
    assert all(a.entropy.shape == (1, a.heads) for a in capture.attention)
    assert capture.level_maps((8, 12)).shape == (1, 1, 8, 12)


def test_each_forward_pass_is_a_new_capture(tiny_unet) -> None:
    observer = InspectionObserver(CaptureOptions(feature_maps=False))
    run(tiny_unet, observer)
    run(tiny_unet, observer, batch=1)
    assert len(observer.passes) == 2
    assert observer.passes[1].blocks["input_blocks.0"].shape[0] == 1


def handle(unet) -> ModelHandle:
    return ModelHandle(unet=unet, schedule=DiscreteSchedule.scaled_linear(), prediction_type=PredictionType.EPS,
                       devices=DeviceManager(device="cpu"))  # fmt: skip


def test_the_observer_travels_as_a_patch_on_a_clone(tiny_unet) -> None:
    base = handle(tiny_unet)
    observer = InspectionObserver()
    inspected = base.clone_with_patch(ObserverPatch(observer))
    assert base.patches == () and patch_observer(base.patches) is None
    assert inspected.unet is base.unet
    assert patch_observer(inspected.patches) is observer
    x, t, context = inputs(tiny_unet)
    with torch.inference_mode():
        out = UNetCall(inspected.unet, observer=patch_observer(inspected.patches))(x, t, context=context)
        plain = UNetCall(base.unet, observer=patch_observer(base.patches))(x, t, context=context)
    assert torch.equal(out, plain)
    assert len(observer.passes) == 1


class Recorder(UNetObserver):
    def __init__(self, replacement=None) -> None:
        self.blocks: list[str] = []
        self.replacement = replacement

    def block_output(self, name, output) -> None:
        self.blocks.append(name)

    def attention(self, call: AttentionCall):
        return None if self.replacement is None else torch.zeros_like(call.q)


def test_several_observer_patches_all_see_the_pass_and_the_first_replacement_wins(tiny_unet) -> None:
    first, second = Recorder(), Recorder(replacement=True)
    chained = patch_observer([("lora", "x.safetensors", 1.0), ObserverPatch(first), ObserverPatch(second)])
    assert isinstance(chained, ObserverChain)
    replaced = run(tiny_unet, chained)
    assert first.blocks == second.blocks and len(first.blocks) == 9
    assert not torch.equal(replaced, run(tiny_unet))  # the second observer's zeros replaced attention


def test_unet_call_refuses_inputs_the_unet_does_not_take(tiny_unet) -> None:
    x, t, context = inputs(tiny_unet)
    with pytest.raises(TypeError, match="control"):
        UNetCall(tiny_unet)(x, t, context=context, control=torch.zeros(1))
    with torch.inference_mode():
        ignored = UNetCall(tiny_unet)(x, t, context=context, pooled=torch.zeros(2, 32))
    assert torch.equal(ignored, run(tiny_unet))
