"""Node results kept between prompts: least-recently-used entries go first once the byte budget is spent.

Entries are keyed by content (see ``cache_key``), never by node id, so results of recent graphs stay
and switching between two workflows does not reload their models.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from latentloom.engine.sizes import estimate_size


@dataclass(frozen=True)
class NodeOutputs:
    """What one node produced: per output slot, the list of items (ComfyUI's list semantics), and its UI."""

    outputs: tuple[tuple[Any, ...], ...]
    ui: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class _Entry:
    value: NodeOutputs
    size: int


class OutputCache:
    """An LRU of NodeOutputs bounded by estimated bytes. Safe to query from another thread.

    ``ram_budget_bytes`` None means unbounded. A single result bigger than the whole budget is not kept
    (keeping it would evict everything else and still exceed the budget). ``enabled=False`` keeps nothing.
    """

    def __init__(self, *, ram_budget_bytes: int | None = 4 * 2**30, enabled: bool = True) -> None:
        if ram_budget_bytes is not None and ram_budget_bytes < 0:
            raise ValueError(f"ram_budget_bytes must be >= 0 or None, got {ram_budget_bytes}")
        self._budget = ram_budget_bytes
        self._enabled = enabled
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
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
        size = estimate_size(value)
        with self._lock:
            self._remove(key)
            if self._budget is not None and size > self._budget:
                return False
            self._entries[key] = _Entry(value, size)
            self._bytes += size
            self._evict_beyond_budget()
            return True

    def __contains__(self, key: object) -> bool:
        """Whether a key is stored; does not count as a use."""
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
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
            self._bytes -= entry.size

    def _evict_beyond_budget(self) -> None:
        while self._budget is not None and self._bytes > self._budget and self._entries:
            _, entry = self._entries.popitem(last=False)
            self._bytes -= entry.size
            self._evictions += 1
