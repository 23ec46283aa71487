"""The /system_stats body (ComfyUI's shape). Machine facts come from a callable the composition root
supplies, because reading them needs torch and the server layer never imports it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import latentloom


@dataclass(frozen=True)
class DeviceStats:
    name: str
    type: str  # torch device type: "cpu", "cuda", "mps"
    index: int | None
    vram_total: int
    vram_free: int
    torch_vram_total: int
    torch_vram_free: int


@dataclass(frozen=True)
class MachineStats:
    pytorch_version: str
    ram_total: int
    ram_free: int
    devices: tuple[DeviceStats, ...]

    @classmethod
    def from_mapping(cls, facts: Mapping[str, Any]) -> MachineStats:
        """From a dict with these field names (what DeviceManager.system_info returns)."""
        devices = tuple(DeviceStats(**device) for device in facts["devices"])
        return cls(facts["pytorch_version"], facts["ram_total"], facts["ram_free"], devices)


MachineProbe = Callable[[], MachineStats]


def system_stats_body(machine: MachineStats, *, argv: list[str] | None = None) -> dict[str, Any]:
    return {
        "system": {
            "os": os.name,
            "python_version": sys.version,
            "embedded_python": False,
            "latentloom_version": latentloom.__version__,
            "pytorch_version": machine.pytorch_version,
            "ram_total": machine.ram_total,
            "ram_free": machine.ram_free,
            "argv": list(sys.argv if argv is None else argv),
        },
        "devices": [
            {
                "name": device.name,
                "type": device.type,
                "index": device.index,
                "vram_total": device.vram_total,
                "vram_free": device.vram_free,
                "torch_vram_total": device.torch_vram_total,
                "torch_vram_free": device.torch_vram_free,
            }
            for device in machine.devices
        ],
    }
