"""The durable queue and history: one embedded SQLite database (WAL mode) under the base directory.

Every write goes through one writer thread, in the order it was submitted, and returns a Future that is
done once the change is committed: callers that promise durability (POST /prompt, the worker recording
a finished prompt) wait for it, the rest (deletes from the event loop) do not, so the event loop never
waits on the disk. Reads happen once, at start (``recover``); afterwards the in-memory queue and history
answer every read.

A restart after a crash (``kill -9``) finds the prompts that were pending still pending, and the prompt
that was running is NOT re-queued: it may be what crashed the server, and running it again could repeat
the crash forever. ``recover`` returns it so that it is recorded in history as interrupted.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS queue (
        arrival INTEGER PRIMARY KEY AUTOINCREMENT,
        prompt_id TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL CHECK (state IN ('pending', 'running')),
        item TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        prompt_id TEXT NOT NULL UNIQUE,
        entry TEXT NOT NULL
    )""",
)


@dataclass(frozen=True)
class StoredPrompt:
    """A queue row as it was submitted: the QueueItem fields that JSON can hold (not the graph)."""

    number: int | float
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs_to_execute: list[str]
    client_id: str | None
    force: bool

    def to_json(self) -> str:
        return json.dumps(
            {
                "number": self.number,
                "prompt_id": self.prompt_id,
                "prompt": self.prompt,
                "extra_data": self.extra_data,
                "outputs_to_execute": self.outputs_to_execute,
                "client_id": self.client_id,
                "force": self.force,
            },
            default=str,
        )

    @classmethod
    def from_json(cls, text: str) -> StoredPrompt:
        data = json.loads(text)
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Recovered:
    """What a previous run left: pending prompts in arrival order, the interrupted ones, history."""

    pending: list[StoredPrompt]
    interrupted: list[StoredPrompt]
    history: list[tuple[str, dict[str, Any]]]  # (prompt_id, entry), oldest first


class PromptStore:
    """The SQLite file; ``open`` makes it (and its folder), ``close`` waits for queued writes."""

    def __init__(self, path: Path, *, history_max_items: int) -> None:
        self.path = Path(path)
        self._history_max_items = history_max_items
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="latentloom-store")
        self._connection: sqlite3.Connection | None = None

    # -- lifecycle (blocking: call from a thread, not the event loop) ------------------------------

    def open(self) -> Recovered:
        """Open (or create) the database and return what a previous run left in it."""
        return self._writer.submit(self._open).result()

    def close(self) -> None:
        """Commit what is queued, close the connection (on its own thread) and stop the writer."""
        if self._connection is not None:
            self._writer.submit(self._close_connection).result()
        self._writer.shutdown(wait=True)

    def _close_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def flush(self) -> None:
        """Wait until every write submitted so far is committed."""
        self._writer.submit(lambda: None).result()

    # -- writes (any thread; ordered; each returns a Future done once committed) --------------------

    def add_pending(self, prompt: StoredPrompt) -> Future[None]:
        return self._submit(
            "INSERT OR REPLACE INTO queue (prompt_id, state, item) VALUES (?, 'pending', ?)",
            (prompt.prompt_id, prompt.to_json()),
        )

    def mark_running(self, prompt_id: str) -> Future[None]:
        return self._submit("UPDATE queue SET state = 'running' WHERE prompt_id = ?", (prompt_id,))

    def remove_from_queue(self, prompt_ids: list[str]) -> Future[None]:
        return self._submit_many("DELETE FROM queue WHERE prompt_id = ?", [(pid,) for pid in prompt_ids])

    def clear_pending(self) -> Future[None]:
        return self._submit("DELETE FROM queue WHERE state = 'pending'", ())

    def record_history(self, prompt_id: str, entry: dict[str, Any]) -> Future[None]:
        """Add (or replace) a history entry and drop the oldest beyond the retention limit."""
        return self._watch(self._writer.submit(self._record_history, prompt_id, entry))

    def delete_history(self, prompt_ids: list[str]) -> Future[None]:
        return self._submit_many("DELETE FROM history WHERE prompt_id = ?", [(pid,) for pid in prompt_ids])

    def clear_history(self) -> Future[None]:
        return self._submit("DELETE FROM history", ())

    # -- the writer thread -------------------------------------------------------------------------

    def _submit(self, sql: str, parameters: tuple[Any, ...]) -> Future[None]:
        return self._submit_many(sql, [parameters])

    def _submit_many(self, sql: str, rows: list[tuple[Any, ...]]) -> Future[None]:
        return self._watch(self._writer.submit(self._execute_many, sql, rows))

    def _watch(self, future: Future[None]) -> Future[None]:
        # Most callers do not wait for deletes: a failed write is logged, never lost in a dropped Future.
        future.add_done_callback(_log_failure)
        return future

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise RuntimeError(f"the prompt store {self.path} is not open")
        return self._connection

    def _execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self._db() as connection:
            connection.executemany(sql, rows)

    def _record_history(self, prompt_id: str, entry: dict[str, Any]) -> None:
        with self._db() as connection:
            # Replacing moves the entry to the newest end, as the in-memory history does.
            connection.execute("DELETE FROM history WHERE prompt_id = ?", (prompt_id,))
            connection.execute(
                "INSERT INTO history (prompt_id, entry) VALUES (?, ?)", (prompt_id, json.dumps(entry, default=str))
            )
            self._trim_history(connection)

    def _trim_history(self, connection: sqlite3.Connection) -> None:
        connection.execute(
            "DELETE FROM history WHERE seq NOT IN (SELECT seq FROM history ORDER BY seq DESC LIMIT ?)",
            (self._history_max_items,),
        )

    def _open(self) -> Recovered:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The writer thread is the only thread that touches the connection.
        connection = sqlite3.connect(self.path, isolation_level="DEFERRED")
        connection.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a process crash (kill -9); only power loss can undo one.
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=5000")
        with connection:
            for statement in _SCHEMA:
                connection.execute(statement)
            self._trim_history(connection)
        self._connection = connection
        return self._read_back(connection)

    def _read_back(self, connection: sqlite3.Connection) -> Recovered:
        pending: list[StoredPrompt] = []
        interrupted: list[StoredPrompt] = []
        for state, text in connection.execute("SELECT state, item FROM queue ORDER BY arrival"):
            (interrupted if state == "running" else pending).append(StoredPrompt.from_json(text))
        history = [
            (prompt_id, json.loads(text))
            for prompt_id, text in connection.execute("SELECT prompt_id, entry FROM history ORDER BY seq")
        ]
        return Recovered(pending=pending, interrupted=interrupted, history=history)


def _log_failure(future: Future[None]) -> None:
    if not future.cancelled() and (error := future.exception()) is not None:
        log.error("a prompt store write failed: %s", error, exc_info=error)
