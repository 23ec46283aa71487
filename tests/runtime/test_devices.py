"""Device and dtype choice, the LRU of models on the accelerator, and the facts for /system_stats."""

from __future__ import annotations

import gc
import os

import pytest
import torch
from torch import nn

from latentloom.runtime.devices import (
    DeviceError,
    DeviceManager,
    module_bytes,
    pick_device,
    pick_dtype,
    plan_evictions,
    ram_bytes,
)

GIB = 1024**3

needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only defaults")


@needs_no_gpu
def test_cpu_machine_defaults_to_cpu_and_fp32() -> None:
    manager = DeviceManager()
    assert manager.device == torch.device("cpu")
    assert manager.dtype == torch.float32
    assert not manager.offloads


@pytest.mark.parametrize(("precision", "dtype"), [("fp32", torch.float32), ("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_precision_overrides_the_dtype(precision: str, dtype: torch.dtype) -> None:
    assert DeviceManager(device="cpu", precision=precision).dtype == dtype


def test_accelerators_default_to_fp16() -> None:
    assert pick_dtype(None, torch.device("cuda", 0)) == torch.float16
    assert pick_dtype(None, torch.device("mps")) == torch.float16
    assert pick_dtype(None, torch.device("cpu")) == torch.float32


def test_unknown_precision_is_named() -> None:
    with pytest.raises(DeviceError, match="unknown precision 'fp8'; choose one of fp32, fp16, bf16"):
        DeviceManager(device="cpu", precision="fp8")


@pytest.mark.parametrize(("device", "message"), [("gpu", "unknown device 'gpu'"), ("meta", "computes on cpu, cuda or mps")])
def test_unusable_devices_are_named(device: str, message: str) -> None:
    with pytest.raises(DeviceError, match=message):
        pick_device(device)


@needs_no_gpu
def test_asking_for_cuda_without_a_gpu_says_so() -> None:
    with pytest.raises(DeviceError, match="sees no CUDA GPU"):
        DeviceManager(device="cuda")


def test_module_bytes_counts_parameters_and_buffers_once() -> None:
    shared = nn.Linear(10, 10)
    model = nn.Sequential(shared, shared, nn.BatchNorm1d(10))
    # Linear: 110 floats; BatchNorm: weight, bias, running mean and var (10 each) + an int64 counter.
    assert module_bytes(model) == 110 * 4 + 40 * 4 + 8
    assert module_bytes(model.half()) == 110 * 2 + 40 * 2 + 8


# --- the eviction policy -----------------------------------------------------------------------------


def test_nothing_is_evicted_when_the_model_fits() -> None:
    assert plan_evictions([(1, 4 * GIB)], needed=2 * GIB, available=4 * GIB, reserve=GIB, keep=frozenset()) == []


def test_least_recently_used_models_go_first_until_enough_is_free() -> None:
    resident = [(1, 2 * GIB), (2, 2 * GIB), (3, 2 * GIB)]  # 1 is the least recently used
    assert plan_evictions(resident, needed=3 * GIB, available=2 * GIB, reserve=GIB, keep=frozenset()) == [1]
    assert plan_evictions(resident, needed=5 * GIB, available=2 * GIB, reserve=GIB, keep=frozenset()) == [1, 2]


def test_models_needed_together_are_kept() -> None:
    resident = [(1, 2 * GIB), (2, 2 * GIB), (3, 2 * GIB)]
    assert plan_evictions(resident, needed=3 * GIB, available=2 * GIB, reserve=GIB, keep=frozenset({1})) == [2]


def test_when_nothing_suffices_everything_evictable_goes() -> None:
    resident = [(1, GIB), (2, GIB)]
    assert plan_evictions(resident, needed=10 * GIB, available=0, reserve=GIB, keep=frozenset({2})) == [1]


# --- the manager's bookkeeping, on a simulated accelerator ---------------------------------------------


class SimulatedAccelerator(DeviceManager):
    """A manager whose "accelerator" has a fixed capacity and whose moves are recorded, not performed."""

    def __init__(self, *, capacity: int, reserve: int) -> None:
        super().__init__(device="cpu", vram_reserve=reserve)
        self.device = torch.device("cuda", 0)
        self.capacity = capacity
        self.on_device: dict[int, int] = {}
        self.moves: list[tuple[str, str]] = []

    def available_bytes(self) -> int:
        return self.capacity - sum(self.on_device.values())

    def _move(self, module: nn.Module, device: torch.device) -> None:
        self.moves.append((module.name, device.type))  # type: ignore[attr-defined]
        if device == self.device:
            self.on_device[id(module)] = module_bytes(module)
        else:
            self.on_device.pop(id(module), None)


def named_model(name: str, floats: int) -> nn.Module:
    module = nn.Linear(floats, 1, bias=False)
    module.name = name  # type: ignore[assignment]
    return module


def test_loading_evicts_the_least_recently_used_model() -> None:
    manager = SimulatedAccelerator(capacity=1000, reserve=100)
    unet, clip, vae = named_model("unet", 100), named_model("clip", 100), named_model("vae", 100)  # 400 bytes each
    manager.load(unet)
    manager.load(clip)
    assert manager.resident() == [unet, clip]
    manager.load(unet)  # already resident: only becomes most recent
    assert manager.resident() == [clip, unet]
    manager.load(vae)  # 800 used of 1000, needs 400 + 100 reserve: clip (least recent) goes back
    assert manager.resident() == [unet, vae]
    assert manager.moves == [("unet", "cuda"), ("clip", "cuda"), ("clip", "cpu"), ("vae", "cuda")]


def test_models_loaded_together_do_not_evict_each_other() -> None:
    manager = SimulatedAccelerator(capacity=1000, reserve=100)
    unet, clip, vae = named_model("unet", 100), named_model("clip", 100), named_model("vae", 100)
    manager.load(clip)
    manager.load(unet, vae)
    assert manager.resident() == [unet, vae]
    assert ("clip", "cpu") in manager.moves and ("unet", "cpu") not in manager.moves


def test_offload_all_returns_every_model() -> None:
    manager = SimulatedAccelerator(capacity=10_000, reserve=0)
    models = [named_model(f"m{i}", 10) for i in range(3)]
    manager.load(*models)
    manager.offload_all()
    assert manager.resident() == []
    assert manager.on_device == {}


def test_collected_models_are_forgotten() -> None:
    manager = SimulatedAccelerator(capacity=10_000, reserve=0)
    manager.load(named_model("temporary", 10))
    gc.collect()
    assert manager.resident() == []


def test_on_the_cpu_loading_moves_nothing() -> None:
    manager = DeviceManager(device="cpu")
    model = nn.Linear(4, 4)
    weight = model.weight
    manager.load(model)
    assert model.weight is weight
    assert manager.resident() == [model]
    manager.offload(model)
    assert model.weight is weight and manager.resident() == []


# --- /system_stats ----------------------------------------------------------------------------------


def test_system_info_has_the_fields_of_the_server_machine_stats() -> None:
    from server.system_stats import DeviceStats, MachineStats

    info = DeviceManager(device="cpu").system_info()
    stats = MachineStats(
        pytorch_version=info["pytorch_version"],
        ram_total=info["ram_total"],
        ram_free=info["ram_free"],
        devices=tuple(DeviceStats(**device) for device in info["devices"]),
    )
    assert stats.pytorch_version == torch.__version__
    assert stats.devices[0].type == "cpu" and stats.devices[0].index is None
    assert 0 < stats.ram_free <= stats.ram_total


def test_ram_total_matches_the_operating_system() -> None:
    total, available = ram_bytes()
    assert total == pytest.approx(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), rel=0.05)
    assert 0 < available <= total
