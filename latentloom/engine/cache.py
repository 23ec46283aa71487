"""Node results kept between prompts: least-recently-used entries go first once the byte budget is spent.

Entries are keyed by content (see ``cache_key``), never by node id, so results of recent graphs stay
and switching between two workflows does not reload their models. Memory that several entries share (a
checkpoint's UNet and the LoRA clones made from it) is counted once, for as long as any of them is kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from latentloom.engine.sizes import measure_parts


@dataclass(frozen=True)
class NodeOutputs:
    """What one node produced: per output slot, the list of items (ComfyUI's list semantics), and its UI."""

    outputs: tuple[tuple[Any, ...], ...]
    ui: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class _Entry:
    value: NodeOutputs
    parts: dict[int, int]  # see sizes.measure_parts


@dataclass
class _Part:
    users: int  # entries that hold it
    size: int


class OutputCache:
    """An LRU of NodeOutputs bounded by estimated bytes. Safe to query from another thread.

    ``ram_budget_bytes`` None means unbounded. A single result bigger than the whole budget is not kept
    (keeping it would evict everything else and still exceed the budget). ``enabled=False`` keeps nothing.
    The bytes are those of distinct parts: a part shared by several entries counts once, and is freed
    when the last of them goes. ``refresh`` measures again what kept values have grown since (a model's
    kept patched weights appear at its first run, after it was stored).
    """

    def __init__(self, *, ram_budget_bytes: int | None = 4 * 2**30, enabled: bool = True) -> None:
        if ram_budget_bytes is not None and ram_budget_bytes < 0:
            raise ValueError(f"ram_budget_bytes must be >= 0 or None, got {ram_budget_bytes}")
        self._budget = ram_budget_bytes
        self._enabled = enabled
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._parts: dict[int, _Part] = {}
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._enabled

    def get(self, key: Hashable) -> NodeOutputs | None:
        """The stored result (now the most recently used), or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return entry.value

    def put(self, key: Hashable, value: NodeOutputs) -> bool:
        """Store a result, evicting the least recently used beyond the budget; False when not kept."""
        if not self._enabled:
            return False
        parts = measure_parts(value)
        with self._lock:
            self._remove(key)
            if self._budget is not None and sum(parts.values()) > self._budget:
                return False
            self._entries[key] = _Entry(value, parts)
            self._hold(parts)
            self._evict_beyond_budget()
            return True

    def refresh(self) -> None:
        """Measure every kept value again, then evict beyond the budget (call between prompts)."""
        with self._lock:
            kept = list(self._entries.items())
        measured = [(key, entry, measure_parts(entry.value)) for key, entry in kept]
        with self._lock:
            for key, entry, parts in measured:
                if self._entries.get(key) is not entry:
                    continue  # replaced or evicted meanwhile
                self._hold(parts)
                self._release(entry.parts)
                self._entries[key] = _Entry(entry.value, parts)
            self._evict_beyond_budget()

    def __contains__(self, key: object) -> bool:
        """Whether a key is stored; does not count as a use."""
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._parts.clear()
            self._bytes = 0

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "enabled": self._enabled,
                "entries": len(self._entries),
                "bytes": self._bytes,
                "budget": self._budget,
                "hits": self._hits,
                "misses": self._misses,
                "evictions": self._evictions,
            }

    def _remove(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._release(entry.parts)

    def _hold(self, parts: dict[int, int]) -> None:
        """Count one more user of each part; the newest measure of a part's size wins."""
        for part_id, size in parts.items():
            part = self._parts.get(part_id)
            if part is None:
                self._parts[part_id] = _Part(users=1, size=size)
                self._bytes += size
            else:
                part.users += 1
                self._bytes += size - part.size
                part.size = size

    def _release(self, parts: dict[int, int]) -> None:
        for part_id in parts:
            part = self._parts[part_id]
            part.users -= 1
            if part.users == 0:
                del self._parts[part_id]
                self._bytes -= part.size

    def _evict_beyond_budget(self) -> None:
        while self._budget is not None and self._bytes > self._budget and self._entries:
            _, entry = self._entries.popitem(last=False)
            self._release(entry.parts)
            self._evictions += 1
