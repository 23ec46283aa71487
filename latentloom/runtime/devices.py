"""The compute device, the dtype weights live in, and which models sit on the accelerator.

Weights are loaded on the CPU in the compute dtype. ``DeviceManager.load(module)`` moves a model to the
compute device when a node needs it; when the accelerator runs short, the least recently used other
models go back to the CPU first, keeping a reserve free for activations. On a CPU-only machine every
model already lives where it computes, so ``load`` only records use. Nothing is probed at import: the
manager is made once in the composition root.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from latentloom.api.errors import LatentLoomError

PRECISIONS: Mapping[str, torch.dtype] = MappingProxyType(
    {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
)
# Room left free on the accelerator for activations (attention maps, VAE decode) after weights move in.
DEFAULT_VRAM_RESERVE = 1024**3


class DeviceError(LatentLoomError):
    """A device or precision that was asked for and cannot be used."""


def pick_device(requested: str | None = None) -> torch.device:
    """The device named (``cpu``, ``cuda``, ``cuda:1``, ``mps``), or the best one present: cuda, mps, cpu."""
    if requested is None:
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as error:
        raise DeviceError(f"unknown device {requested!r} (use cpu, cuda, cuda:N or mps)") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {requested!r} was asked for but this torch build sees no CUDA GPU")
        index = torch.cuda.current_device() if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {requested!r}: only {torch.cuda.device_count()} CUDA device(s) present")
        return torch.device("cuda", index)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {requested!r} was asked for but MPS is not available")
    if device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"device {requested!r}: LatentLoom computes on cpu, cuda or mps")
    return device


def pick_dtype(precision: str | None, device: torch.device) -> torch.dtype:
    """fp16 on an accelerator, fp32 on the CPU (where fp16 matmuls are slow); ``precision`` overrides."""
    if precision is None:
        return torch.float32 if device.type == "cpu" else torch.float16
    if precision not in PRECISIONS:
        raise DeviceError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return PRECISIONS[precision]


def module_bytes(module: nn.Module) -> int:
    """Bytes of a module's parameters and buffers (a tensor shared by two modules counted once)."""
    seen: set[tuple[torch.device, int]] = set()
    total = 0
    for tensor in (*module.parameters(), *module.buffers()):
        key = (tensor.device, tensor.data_ptr())
        if tensor.device.type == "meta" or key not in seen:
            seen.add(key)
            total += tensor.numel() * tensor.element_size()
    return total


def plan_evictions(
    resident: Sequence[tuple[int, int]], *, needed: int, available: int, reserve: int, keep: frozenset[int]
) -> list[int]:
    """Which resident models to move off the accelerator so that ``needed`` bytes fit with ``reserve`` left.

    ``resident`` holds (key, bytes) from least to most recently used; models in ``keep`` stay. Evicts in
    that order until enough is free; when even evicting everything is not enough, it evicts everything it
    may and lets the move try (the allocator then reports the real shortfall).
    """
    evict: list[int] = []
    for key, size in resident:
        if available >= needed + reserve:
            break
        if key in keep:
            continue
        evict.append(key)
        available += size
    return evict


@dataclass(frozen=True)
class _Resident:
    module: weakref.ref[nn.Module]
    size: int


class DeviceManager:
    """Device, dtype and the small LRU of models on the accelerator. Thread-safe."""

    def __init__(
        self,
        *,
        device: str | None = None,
        precision: str | None = None,
        vram_reserve: int = DEFAULT_VRAM_RESERVE,
    ) -> None:
        self.device = pick_device(device)
        self.dtype = pick_dtype(precision, self.device)
        self.offload_device = torch.device("cpu")
        self.vram_reserve = vram_reserve
        self._resident: OrderedDict[int, _Resident] = OrderedDict()
        self._lock = threading.RLock()

    @property
    def offloads(self) -> bool:
        """Whether models move between the CPU and a separate compute device."""
        return self.device != self.offload_device

    def load(self, *modules: nn.Module) -> None:
        """Make sure ``modules`` are on the compute device, together (none evicts another of them).

        The manager keeps its own record of what is resident: models move only through it.
        """
        with self._lock:
            self._forget_dead()
            keep = frozenset(id(m) for m in modules)
            for module in modules:
                self._load_one(module, keep=keep)

    def _load_one(self, module: nn.Module, *, keep: frozenset[int]) -> None:
        key = id(module)
        if key in self._resident:
            self._resident.move_to_end(key)
            return
        size = module_bytes(module)
        if self.offloads:
            resident = [(k, r.size) for k, r in self._resident.items()]
            available = self.available_bytes()
            for victim in plan_evictions(resident, needed=size, available=available, reserve=self.vram_reserve, keep=keep):
                self._offload_key(victim)
            self._move(module, self.device)
        self._resident[key] = _Resident(weakref.ref(module), size)

    def offload(self, module: nn.Module) -> None:
        """Move one model back to the CPU (a no-op when it is not resident)."""
        with self._lock:
            self._offload_key(id(module))

    def offload_all(self) -> None:
        with self._lock:
            for key in list(self._resident):
                self._offload_key(key)
        self.empty_cache()

    def _offload_key(self, key: int) -> None:
        entry = self._resident.pop(key, None)
        module = entry.module() if entry else None
        if module is not None and self.offloads:
            self._move(module, self.offload_device)

    def _move(self, module: nn.Module, device: torch.device) -> None:
        module.to(device)

    def _forget_dead(self) -> None:
        for key in [k for k, r in self._resident.items() if r.module() is None]:
            del self._resident[key]

    def resident(self) -> list[nn.Module]:
        """Models on the compute device, least recently used first."""
        with self._lock:
            self._forget_dead()
            return [m for r in self._resident.values() if (m := r.module()) is not None]

    def available_bytes(self) -> int:
        """Memory the compute device can still give to new tensors (torch's cached free blocks included)."""
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            cached = torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
            return free + cached
        return ram_bytes()[1]

    def empty_cache(self) -> None:
        """Hand the allocator's cached blocks back to the driver (for other processes and accurate stats)."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        elif self.device.type == "mps":
            torch.mps.empty_cache()

    def system_info(self) -> dict[str, Any]:
        """Machine facts for GET /system_stats: the fields of the server's MachineStats/DeviceStats."""
        ram_total, ram_free = ram_bytes()
        return {
            "pytorch_version": torch.__version__,
            "ram_total": ram_total,
            "ram_free": ram_free,
            "devices": [self._device_info(ram_total=ram_total, ram_free=ram_free)],
        }

    def _device_info(self, *, ram_total: int, ram_free: int) -> dict[str, Any]:
        if self.device.type == "cuda":
            free, total = torch.cuda.mem_get_info(self.device)
            reserved = torch.cuda.memory_reserved(self.device)
            return {
                "name": f"{self.device} {torch.cuda.get_device_name(self.device)}",
                "type": "cuda",
                "index": self.device.index,
                "vram_total": total,
                "vram_free": free,
                "torch_vram_total": reserved,
                "torch_vram_free": reserved - torch.cuda.memory_allocated(self.device),
            }
        # CPU and MPS compute in system memory, so that is their "VRAM" (ComfyUI reports it the same way).
        return {
            "name": str(self.device),
            "type": self.device.type,
            "index": self.device.index,
            "vram_total": ram_total,
            "vram_free": ram_free,
            "torch_vram_total": ram_total,
            "torch_vram_free": ram_free,
        }


def ram_bytes() -> tuple[int, int]:
    """(total, available) system memory in bytes; available is what new allocations can get."""
    if sys.platform.startswith("linux"):
        fields = _meminfo()
        if "MemTotal" in fields and "MemAvailable" in fields:
            return fields["MemTotal"], fields["MemAvailable"]
    page = os.sysconf("SC_PAGE_SIZE")
    total = os.sysconf("SC_PHYS_PAGES") * page
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * page
    except (ValueError, OSError):
        free = 0  # macOS has no such counter; reporting 0 is honest, a guess would not be
    return total, free


def _meminfo() -> dict[str, int]:
    fields: dict[str, int] = {}
    with open("/proc/meminfo", encoding="ascii") as file:
        for line in file:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                fields[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return fields
