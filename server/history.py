"""Finished prompts in ComfyUI's /history shape, plus our per-node timings.

Reads are answered from memory; with a PromptStore every change is also written to SQLite (off the
event loop, by the store's writer thread) and ``restore`` loads what a previous run kept. Thread-safe:
the worker records, the event loop reads. Entries are never changed after they are recorded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from server.queue import QueueItem
from server.store import PromptStore, StoredPrompt

# Why a prompt that was running when the server died is not run again: it may be what killed it.
INTERRUPTED_BY_RESTART = (
    "the server stopped while this prompt was running; it was not run again after the restart "
    "(queue it again to retry)"
)


def _meta(node_id: str) -> dict[str, Any]:
    return {"node_id": node_id, "display_node": node_id, "parent_node": None, "real_node_id": node_id}


def history_entry(item: QueueItem, outcome: Any) -> dict[str, Any]:
    """The /history entry for one finished prompt (``outcome`` is an engine ExecutionOutcome)."""
    ui_outputs: Mapping[str, Any] = outcome.ui_outputs
    return {
        "prompt": item.as_list(),
        "outputs": dict(ui_outputs),
        "status": {
            "status_str": "success" if outcome.status == "success" else "error",
            "completed": outcome.status == "success",
            "messages": [[event, data] for event, data in outcome.messages],
        },
        # ComfyUI's meta names the node that displays each output; without subgraphs it is the node itself.
        "meta": {node_id: _meta(node_id) for node_id in ui_outputs},
        "timings": dict(outcome.timings),
    }


def interrupted_by_restart_entry(stored: StoredPrompt, *, timestamp: int) -> dict[str, Any]:
    """The history entry of a prompt that was running when the server was killed."""
    item = [stored.number, stored.prompt_id, stored.prompt, stored.extra_data, stored.outputs_to_execute]
    data = {
        "prompt_id": stored.prompt_id,
        "node_id": None,
        "node_type": None,
        "executed": [],
        "timestamp": timestamp,
        "reason": "server_restart",
        "exception_message": INTERRUPTED_BY_RESTART,
    }
    return {
        "prompt": item,
        "outputs": {},
        "status": {
            "status_str": "error",
            "completed": False,
            "messages": [["execution_interrupted", data]],
        },
        "meta": {},
        "timings": {},
    }


class History:
    def __init__(self, *, max_items: int = 10_000, store: PromptStore | None = None) -> None:
        self._max_items = max_items
        self._store = store
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def record(self, prompt_id: str, entry: dict[str, Any]) -> None:
        """Add an entry; with a store this waits until it is on disk (the worker thread calls it)."""
        self._keep(prompt_id, entry)
        if self._store is not None:
            self._store.record_history(prompt_id, entry).result()

    def restore(self, entries: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Load entries a previous run stored (oldest first), without writing them again."""
        for prompt_id, entry in entries:
            self._keep(prompt_id, entry)

    def _keep(self, prompt_id: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries[prompt_id] = entry
            self._entries.move_to_end(prompt_id)
            while len(self._entries) > self._max_items:
                self._entries.popitem(last=False)

    def get(self, prompt_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._entries.get(prompt_id)

    def latest(self, *, max_items: int | None = None, offset: int | None = None) -> dict[str, Any]:
        """Entries oldest first: ``max_items`` keeps the newest N, ``offset`` skips N from the oldest."""
        with self._lock:
            ids = list(self._entries)
            if offset is None:
                start = len(ids) - max_items if max_items is not None else 0
            else:
                start = offset
            chosen = ids[max(start, 0) :]
            if max_items is not None:
                chosen = chosen[:max_items]
            return {prompt_id: self._entries[prompt_id] for prompt_id in chosen}

    def delete(self, prompt_ids: Iterable[str]) -> list[str]:
        with self._lock:
            deleted = [pid for pid in prompt_ids if self._entries.pop(pid, None) is not None]
        if deleted and self._store is not None:
            self._store.delete_history(deleted)
        return deleted

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
        if self._store is not None:
            self._store.clear_history()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
