"""Patched views are kept per base model: running the same patched model again does not recompute."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import torch
from lora_bench import CHECKPOINT_B
from torch import Tensor

from latentloom.engine import NodeOutputs, OutputCache
from latentloom.engine.sizes import estimate_size, measure_parts
from latentloom.runtime.devices import module_bytes
from latentloom.runtime.lora.weights import PatchedViewSlot

KEY = "input_blocks.1.1.transformer_blocks.0.attn1.to_v.weight"
TEXT_KEY = "encoder.layers.1.mlp.fc2.weight"


@dataclass(eq=False)
class CountingPatch:
    """Adds ``step`` to one parameter and counts how often it was asked to."""

    key: str
    step: float = 1.0
    calls: list[str] = field(default_factory=list)

    def patched_keys(self) -> Collection[str]:
        return (self.key,)

    def apply(self, key: str, weight: Tensor) -> Tensor:
        self.calls.append(key)
        return weight + self.step


def test_a_second_load_with_the_same_patches_reuses_the_patched_view(bench):
    model, _, _ = bench.load()
    patch = CountingPatch(KEY)
    patched = model.clone_with_patch(patch)
    first = patched.load()
    second = patched.load()
    assert patch.calls == [KEY]
    assert second is first
    torch.testing.assert_close(second.get_parameter(KEY), model.unet.get_parameter(KEY) + 1.0)


def test_other_patches_replace_the_kept_view_and_the_base_stays_unpatched(bench):
    model, _, _ = bench.load()
    base = model.unet.get_parameter(KEY).detach().clone()
    one, two = CountingPatch(KEY, step=1.0), CountingPatch(KEY, step=2.0)
    first, second = model.clone_with_patch(one), model.clone_with_patch(two)
    first.load(), second.load()
    view = first.load()  # the slot held the second view, so the first is computed again
    assert one.calls == [KEY, KEY] and two.calls == [KEY]
    torch.testing.assert_close(view.get_parameter(KEY), base + 1.0)
    assert model.load() is model.unet  # no weight patches: the base itself, untouched
    assert torch.equal(model.unet.get_parameter(KEY), base)


def test_a_merge_is_computed_once_for_repeated_loads(bench, monkeypatch):
    (a, _, _), (b, _, _) = bench.load(), bench.load(CHECKPOINT_B)
    (merged,) = bench.run("ModelMergeSimple", model1=a, model2=b, ratio=0.5)
    (patch,) = merged.patches
    applied = []
    original = type(patch).apply
    monkeypatch.setattr(type(patch), "apply", lambda self, key, weight: applied.append(key) or original(self, key, weight))
    merged.load()
    count = len(applied)
    merged.load()
    assert count == len(dict(a.unet.named_parameters())) and len(applied) == count


def test_clip_encodes_reuse_the_patched_text_encoder(bench):
    _, clip, _ = bench.load()
    patch = CountingPatch(TEXT_KEY, step=0.5)
    patched = clip.clone_with_patch(patch)
    first = patched.encode("a photo of a cat")
    second = patched.encode("a photo of a dog")
    assert patch.calls == [TEXT_KEY]
    assert not torch.equal(first[0], second[0])
    assert not torch.equal(first[0], clip.encode("a photo of a cat")[0])  # the patch took effect


def test_a_moved_base_is_patched_afresh():
    module = torch.nn.Linear(3, 2)
    slot, patch = PatchedViewSlot(), CountingPatch("weight")
    first = slot.view(module, (patch,))
    module.to(torch.float64)  # a move gives the base new storage: the kept view no longer matches
    second = slot.view(module, (patch,))
    assert len(patch.calls) == 2 and second is not first
    assert second.weight.dtype == torch.float64
    slot.view(module, (patch,), keep=False)
    assert not slot.holds_view


def test_the_kept_view_counts_only_its_patched_tensors(bench):
    model, _, _ = bench.load()
    model.views.clear()  # other tests' views of this shared bench model
    patched = model.clone_with_patch(CountingPatch(KEY))
    assert patched.views.kept_bytes == 0
    patched.load()
    weight = model.unet.get_parameter(KEY)
    assert patched.views.kept_bytes == weight.numel() * weight.element_size()
    patched.views.clear()
    assert patched.views.kept_bytes == 0


def test_the_output_cache_counts_a_model_and_its_lora_clone_once_plus_the_patched_tensors(bench):
    model, _, _ = bench.load()
    model.views.clear()
    patched = model.clone_with_patch(CountingPatch(KEY))
    unet_bytes = module_bytes(model.unet)
    cache = OutputCache(ram_budget_bytes=None)
    cache.put("checkpoint", NodeOutputs(((model,),)))
    cache.put("lora", NodeOutputs(((patched,),)))
    counted = cache.stats()["bytes"]
    assert unet_bytes < counted < unet_bytes + 4096  # the UNet once, plus the two small tuples
    patched.load()  # the first run keeps a patched view, after both results were stored
    cache.refresh()
    weight = model.unet.get_parameter(KEY)
    grown = cache.stats()["bytes"] - counted - weight.numel() * weight.element_size()
    assert 0 <= grown < 256  # the patched tensor, and the counting patch's list of calls


def test_a_lora_clone_measures_the_loras_tensors_and_a_merge_the_other_model(bench):
    model, _, _ = bench.load()
    other, _, _ = bench.load(CHECKPOINT_B)
    lora_holding = LoraLike(CountingPatch(KEY), torch.zeros(1000))  # a LoRA patch holds its adapters' tensors
    clone = model.clone_with_patch(lora_holding)
    unet_bytes = module_bytes(model.unet)
    assert estimate_size(lora_holding) > 4000
    assert estimate_size(clone) == estimate_size(model) + estimate_size(lora_holding)

    (merged,) = bench.run("ModelMergeSimple", model1=model, model2=other, ratio=0.5)
    parts = measure_parts(merged)
    assert parts[id(model.unet)] == unet_bytes and parts[id(other.unet)] == module_bytes(other.unet)
    cache = OutputCache(ram_budget_bytes=None)
    cache.put("b", NodeOutputs(((other,),)))
    cache.put("merge", NodeOutputs(((merged,),)))
    cache.put("b", NodeOutputs(((1,),)))  # the loader's result goes: the merge still keeps model b alive
    assert cache.stats()["bytes"] > unet_bytes + module_bytes(other.unet)


@dataclass(eq=False)
class LoraLike:
    """A weight patch holding tensors, the way LoraPatch holds its adapters."""

    inner: CountingPatch
    tensor: Tensor
    name: str = "lora"

    def patched_keys(self) -> Collection[str]:
        return self.inner.patched_keys()

    def apply(self, key: str, weight: Tensor) -> Tensor:
        return self.inner.apply(key, weight)
