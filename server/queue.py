"""The prompt queue: pending prompts ordered by number, and the one prompt the worker is running.

Thread-safe: the event loop adds, lists and deletes; the worker thread takes and finishes. Every change
calls ``on_change(queue_remaining)`` while still holding the lock, so the sizes it reports arrive in the
order the changes happened (the server broadcasts the queue status from there; it must not block).

With a PromptStore every change is also written to disk, in the same order, by the store's writer
thread; ``put`` returns the Future of that write so POST /prompt can answer only once the prompt is safe.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from typing import Any

from server.store import PromptStore, StoredPrompt


@dataclass(frozen=True)
class QueueItem:
    """One submitted prompt, validated, waiting to run (or running)."""

    number: int | float  # ComfyUI's: the server's counter, or the float a client sent
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs_to_execute: list[str]
    # The validated graph the executor runs (engine.prompt.Graph).
    graph: Any = field(repr=False)
    client_id: str | None = None
    force: bool = False

    def as_list(self) -> list[Any]:
        """ComfyUI's queue/history entry: [number, prompt_id, prompt, extra_data, outputs_to_execute]."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs_to_execute]

    def stored(self) -> StoredPrompt:
        return StoredPrompt(
            number=self.number,
            prompt_id=self.prompt_id,
            prompt=self.prompt,
            extra_data=self.extra_data,
            outputs_to_execute=self.outputs_to_execute,
            client_id=self.client_id,
            force=self.force,
        )


def _done() -> Future[None]:
    future: Future[None] = Future()
    future.set_result(None)
    return future


class QueueClosed(Exception):
    """The server is shutting down; the worker stops taking prompts."""


class PromptQueue:
    def __init__(
        self, *, on_change: Callable[[int], None] = lambda remaining: None, store: PromptStore | None = None
    ) -> None:
        self._on_change = on_change
        self._store = store
        self._condition = threading.Condition()
        # Pending items keyed by (number, arrival) so equal numbers keep their arrival order.
        self._pending: dict[tuple[int | float, int], QueueItem] = {}
        self._arrivals = itertools.count()
        self._numbers = itertools.count()
        self._running: QueueItem | None = None
        self._closed = False

    def next_number(self, *, front: bool) -> int:
        """ComfyUI's numbering: a growing counter; ``front`` negates it so the prompt sorts first."""
        with self._condition:
            number = next(self._numbers)
        return -number if front else number

    def put(self, item: QueueItem) -> Future[None]:
        """Queue ``item``; the Future is done once it is on disk (at once without a store)."""
        with self._condition:
            written = self._store.add_pending(item.stored()) if self._store is not None else _done()
            self._pending[(item.number, next(self._arrivals))] = item
            self._condition.notify()
            self._changed()
        return written

    def restore(self, items: Iterable[QueueItem]) -> None:
        """Queue prompts recovered from the store (already on disk); numbering continues after them."""
        with self._condition:
            for item in items:
                self._pending[(item.number, next(self._arrivals))] = item
                if item.number >= 0:
                    self._numbers = itertools.count(max(next(self._numbers), int(item.number) + 1))
            self._condition.notify_all()
            self._changed()

    def take(self, *, timeout: float | None = None) -> QueueItem | None:
        """Block until a prompt is pending, mark it running and return it; None when ``timeout`` passed.

        Raises QueueClosed once ``close`` was called.
        """
        with self._condition:
            if not self._condition.wait_for(lambda: self._pending or self._closed, timeout=timeout):
                return None
            if self._closed:
                raise QueueClosed
            key = min(self._pending)
            running = self._running = self._pending.pop(key)
            marked = self._store.mark_running(running.prompt_id) if self._store is not None else _done()
            self._changed()
        # Waited for outside the lock: once it runs, a crash finds it marked running, not pending. A failed
        # write is logged by the store; the prompt runs anyway (the worker must not die on a disk error).
        wait([marked])
        return running

    def finish(self, prompt_id: str) -> None:
        """The worker is done with the running prompt."""
        with self._condition:
            if self._running is not None and self._running.prompt_id == prompt_id:
                self._running = None
            if self._store is not None:
                self._store.remove_from_queue([prompt_id])
            self._changed()

    def delete(self, prompt_ids: list[str]) -> list[str]:
        """Remove pending prompts by id; returns the ids that were pending (the running one stays)."""
        wanted = set(prompt_ids)
        with self._condition:
            doomed = [key for key, item in self._pending.items() if item.prompt_id in wanted]
            removed = [self._pending.pop(key).prompt_id for key in doomed]
            if removed:
                if self._store is not None:
                    self._store.remove_from_queue(removed)
                self._changed()
        return removed

    def clear(self) -> int:
        """Drop every pending prompt; returns how many were dropped."""
        with self._condition:
            count = len(self._pending)
            self._pending.clear()
            if count:
                if self._store is not None:
                    self._store.clear_pending()
                self._changed()
        return count

    def _changed(self) -> None:
        self._on_change(len(self._pending) + (self._running is not None))

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def running(self) -> list[QueueItem]:
        with self._condition:
            return [self._running] if self._running is not None else []

    def pending(self) -> list[QueueItem]:
        with self._condition:
            return [self._pending[key] for key in sorted(self._pending)]

    def remaining(self) -> int:
        """Pending plus running: ComfyUI's ``queue_remaining``."""
        with self._condition:
            return len(self._pending) + (self._running is not None)

    def contains(self, prompt_id: str) -> bool:
        with self._condition:
            running = self._running is not None and self._running.prompt_id == prompt_id
            return running or any(item.prompt_id == prompt_id for item in self._pending.values())
