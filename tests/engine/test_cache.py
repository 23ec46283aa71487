"""OutputCache: LRU eviction by estimated bytes, and the size estimates themselves."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import pytest

from latentloom.engine import NodeOutputs, OutputCache
from latentloom.engine.sizes import estimate_size, measure_parts


class Blob:
    """A value that reports its own size, the way model handles do."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes_reported = nbytes

    def __sizeof_cache__(self) -> int:
        return self.nbytes_reported


class Clone:
    """Like a model handle: names the weights it shares with other clones (and their size) as a part, and
    holds patches that are measured like any value."""

    def __init__(self, weights: Blob, patches: tuple[object, ...] = ()) -> None:
        self.weights = weights
        self.patches = patches

    def __cache_parts__(self) -> tuple[tuple[object, int], ...]:
        return ((self.weights, self.weights.nbytes_reported),)

    def __cache_contents__(self) -> tuple[object, ...]:
        return self.patches


def result(nbytes: int) -> NodeOutputs:
    return NodeOutputs(((Blob(nbytes),),))


OVERHEAD = estimate_size(result(0))


# ---- size estimates -------------------------------------------------------------------------------


def test_objects_report_their_own_size():
    assert estimate_size(Blob(12345)) == 12345


def test_numpy_arrays_count_their_bytes():
    array = np.zeros((4, 64, 64), dtype=np.float32)
    assert estimate_size(array) == 4 * 64 * 64 * 4


def test_torch_tensors_count_element_size_times_elements():
    torch = pytest.importorskip("torch")
    tensor = torch.zeros(2, 4, 8, 8, dtype=torch.float16)
    assert estimate_size(tensor) == 2 * 4 * 8 * 8 * 2


def test_tensor_like_duck_types_are_measured_without_torch():
    class TensorLike:
        def element_size(self):
            return 4

        def nelement(self):
            return 1000

    assert estimate_size(TensorLike()) == 4000


def test_containers_sum_their_contents():
    values = [Blob(100), (Blob(200), {"k": Blob(300)})]
    containers = sys.getsizeof(values) + sys.getsizeof(values[1]) + sys.getsizeof(values[1][1])
    assert estimate_size(values) == 600 + containers + sys.getsizeof("k")


def test_dataclass_fields_are_counted():
    @dataclass
    class Conditioning:
        embedding: Blob
        pooled: Blob

    assert estimate_size(Conditioning(Blob(1000), Blob(24))) >= 1024


def test_shared_values_count_once_and_cycles_terminate():
    shared = Blob(5000)
    values: list = [shared, shared]
    values.append(values)
    assert estimate_size(values) == 5000 + sys.getsizeof(values)


def test_declared_parts_are_keyed_by_their_owner():
    weights = Blob(7000)
    parts = measure_parts(Clone(weights))
    assert parts == {id(weights): 7000}
    assert measure_parts([Clone(weights), Clone(weights)]).keys() >= {id(weights)}
    assert estimate_size([Clone(weights), Clone(weights)]) == 7000 + sys.getsizeof([None, None])


def test_declared_contents_are_measured_and_shared_ones_count_once():
    weights, lora = Blob(7000), Blob(300)
    assert estimate_size(Clone(weights, patches=(lora,))) == 7000 + 300
    merged = Clone(weights, patches=(Clone(Blob(5000)),))  # a merge holds the other model
    assert estimate_size(merged) == 7000 + 5000
    both = [Clone(weights, patches=(lora,)), Clone(weights, patches=(lora,))]
    assert estimate_size(both) == 7000 + 300 + sys.getsizeof(both)
    assert estimate_size(Clone(weights, patches=(weights,))) == 7000  # its own weights again: once


def test_deep_nesting_does_not_recurse():
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    assert estimate_size(nested) == 100_000 * sys.getsizeof([[]]) + sys.getsizeof([])


# ---- the LRU --------------------------------------------------------------------------------------


def test_get_returns_what_was_put_and_counts_hits_and_misses():
    cache = OutputCache(ram_budget_bytes=None)
    value = result(10)
    assert cache.put("a", value) is True
    assert cache.get("a") is value
    assert cache.get("b") is None
    assert cache.stats() == {
        "enabled": True,
        "entries": 1,
        "bytes": OVERHEAD + 10,
        "budget": None,
        "hits": 1,
        "misses": 1,
        "evictions": 0,
    }


def test_least_recently_used_entry_is_evicted_first():
    cache = OutputCache(ram_budget_bytes=2 * (OVERHEAD + 1000) + 10)
    cache.put("a", result(1000))
    cache.put("b", result(1000))
    cache.get("a")  # a is now more recent than b
    cache.put("c", result(1000))
    assert "a" in cache and "c" in cache and "b" not in cache
    assert cache.stats()["evictions"] == 1
    assert cache.stats()["bytes"] == 2 * (OVERHEAD + 1000)


def test_a_big_entry_evicts_as_many_as_needed():
    cache = OutputCache(ram_budget_bytes=10_000)
    for key in "abcd":
        cache.put(key, result(1000))
    cache.put("big", result(8000))
    assert list(k for k in "abcd" if k in cache) == ["d"]
    assert cache.stats()["bytes"] <= 10_000


def test_entry_bigger_than_the_budget_is_not_kept_and_keeps_the_others():
    cache = OutputCache(ram_budget_bytes=5000)
    cache.put("a", result(1000))
    assert cache.put("huge", result(6000)) is False
    assert "huge" not in cache and "a" in cache


def test_replacing_a_key_updates_its_size():
    cache = OutputCache(ram_budget_bytes=None)
    cache.put("a", result(1000))
    cache.put("a", result(10))
    assert cache.stats()["bytes"] == OVERHEAD + 10 and len(cache) == 1


def test_entries_sharing_weights_count_them_once():
    weights = Blob(100_000)
    base, clone = NodeOutputs(((Clone(weights),),)), NodeOutputs(((Clone(weights),),))
    cache = OutputCache(ram_budget_bytes=None)
    cache.put("checkpoint", base)
    cache.put("lora", clone)
    assert cache.stats()["bytes"] == estimate_size(base) + estimate_size(clone) - 100_000


def test_shared_weights_stay_counted_until_their_last_holder_goes():
    weights = Blob(100_000)
    cache = OutputCache(ram_budget_bytes=None)
    cache.put("checkpoint", NodeOutputs(((Clone(weights),),)))
    cache.put("lora", NodeOutputs(((Clone(weights),),)))
    cache.put("checkpoint", result(10))  # replaced: the lora clone still holds the weights
    assert cache.stats()["bytes"] == 100_000 + OVERHEAD + (OVERHEAD + 10)
    cache.put("lora", result(10))
    assert cache.stats()["bytes"] == 2 * (OVERHEAD + 10)


def test_a_model_and_its_clone_fit_a_budget_that_holds_one_copy_of_the_weights():
    weights = Blob(100_000)
    cache = OutputCache(ram_budget_bytes=100_000 + 4 * OVERHEAD)
    cache.put("checkpoint", NodeOutputs(((Clone(weights),),)))
    cache.put("lora", NodeOutputs(((Clone(weights),),)))
    assert "checkpoint" in cache and "lora" in cache
    assert cache.stats()["evictions"] == 0


def test_refresh_measures_values_that_grew_and_evicts_beyond_the_budget():
    growing = Blob(1000)
    cache = OutputCache(ram_budget_bytes=10_000)
    cache.put("old", result(3000))
    cache.put("model", NodeOutputs(((growing,),)))
    before = cache.stats()["bytes"]
    growing.nbytes_reported = 5000  # e.g. a patched view kept at the model's first run
    cache.refresh()
    assert cache.stats()["bytes"] == before + 4000
    growing.nbytes_reported = 9000
    cache.refresh()
    assert "old" not in cache and "model" in cache  # least recently used goes first
    assert cache.stats()["bytes"] == OVERHEAD + 9000 and cache.stats()["evictions"] == 1


def test_disabled_cache_keeps_nothing():
    cache = OutputCache(enabled=False)
    assert cache.put("a", result(1)) is False
    assert cache.get("a") is None
    assert cache.stats()["entries"] == 0 and cache.stats()["enabled"] is False


def test_clear_empties_the_cache():
    cache = OutputCache()
    cache.put("a", result(1))
    cache.clear()
    assert len(cache) == 0 and cache.stats()["bytes"] == 0


def test_negative_budget_is_refused():
    with pytest.raises(ValueError, match="ram_budget_bytes"):
        OutputCache(ram_budget_bytes=-1)
