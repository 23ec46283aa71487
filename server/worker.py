"""The worker thread: takes prompts off the queue and runs them, one at a time, off the event loop.

Events go out through ``publish`` (the hub's thread-safe door) as the executor emits them, except the
ones that end a prompt: those wait until the history entry is recorded, so a client that reacts to
``execution_success`` (or ``executing`` null) always finds the prompt in /history.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable

from latentloom.engine import protocol
from latentloom.engine.executor import ExecutionOutcome, Executor
from latentloom.engine.protocol import Event
from server.history import History, history_entry
from server.queue import PromptQueue, QueueClosed, QueueItem

log = logging.getLogger(__name__)

Publish = Callable[..., None]  # publish(event, *, sid=None): WebSocketHub.post

_ENDING_EVENTS = frozenset(
    {protocol.EXECUTION_SUCCESS, protocol.EXECUTION_ERROR, protocol.EXECUTION_INTERRUPTED}
)


def ends_prompt(event: Event) -> bool:
    """The events that mark a prompt finished: the three outcomes and ``executing`` with node null."""
    if event.type in _ENDING_EVENTS:
        return True
    return event.type == protocol.EXECUTING and event.data.get("node") is None


class PromptWorker:
    def __init__(self, *, queue: PromptQueue, history: History, executor: Executor, publish: Publish) -> None:
        self._queue = queue
        self._history = history
        self._executor = executor
        self._publish = publish
        self._interrupt = threading.Event()
        # Guards the pairing of the running prompt id and the interrupt flag.
        self._lock = threading.Lock()
        self._running_id: str | None = None
        self._thread = threading.Thread(target=self._run_forever, name="latentloom-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, *, timeout: float) -> bool:
        """Stop taking prompts, interrupt the running one and wait; False if the thread is still busy."""
        self._queue.close()
        with self._lock:
            self._interrupt.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def interrupt(self, *, prompt_id: str | None = None) -> str | None:
        """Interrupt the running prompt (only if it is ``prompt_id``, when given); returns its id or None."""
        with self._lock:
            if self._running_id is None or prompt_id not in (None, self._running_id):
                return None
            self._interrupt.set()
            return self._running_id

    def _run_forever(self) -> None:
        while True:
            try:
                item = self._queue.take()
            except QueueClosed:
                return
            if item is None:
                continue
            try:
                self._run(item)
            except Exception:
                # Recording the outcome failed (a bug): logged, and the worker goes on with the queue.
                log.exception("the worker failed to finish prompt %s", item.prompt_id)

    def _run(self, item: QueueItem) -> None:
        with self._lock:
            self._interrupt.clear()
            self._running_id = item.prompt_id
        held: list[Event] = []
        try:
            outcome = self._execute(item, held)
            self._history.record(item.prompt_id, history_entry(item, outcome))
        finally:
            # Whatever happened, the prompt leaves the queue and its clients hear that it ended.
            with self._lock:
                self._running_id = None
            self._queue.finish(item.prompt_id)
            for event in held:
                self._publish(event, sid=item.client_id)

    def _execute(self, item: QueueItem, held: list[Event]) -> ExecutionOutcome:
        def emit(event: Event) -> None:
            if ends_prompt(event):
                held.append(event)
            else:
                self._publish(event, sid=item.client_id)

        try:
            return self._executor.run(
                item.graph,
                prompt_id=item.prompt_id,
                emit=emit,
                interrupt=self._interrupt,
                extra_data=item.extra_data,
                force=item.force,
            )
        except (Exception, SystemExit) as exc:
            # The executor reports node failures itself; reaching here is a bug in the engine, or a node
            # that called sys.exit(). The prompt fails with the error in its history and the worker
            # lives on for the next prompt.
            log.exception("the executor failed on prompt %s", item.prompt_id)
            return crashed_outcome(item, exc, held)


def crashed_outcome(item: QueueItem, exc: BaseException, held: list[Event]) -> ExecutionOutcome:
    """A failed outcome for an exception that escaped the executor, with the events clients wait for.

    The execution_error payload has ComfyUI's keys; node_id and node_type are null because no node
    failed. ``held`` receives execution_error and ``executing`` null unless the executor sent them.
    """
    data = {
        "prompt_id": item.prompt_id,
        "node_id": None,
        "node_type": None,
        "executed": [],
        "exception_message": f"the executor failed: {exc}",
        "exception_type": type(exc).__qualname__,
        "traceback": traceback.format_tb(exc.__traceback__),
        "current_inputs": {},
        "current_outputs": [],
        "timestamp": protocol.now_ms(),
    }
    failure = Event(protocol.EXECUTION_ERROR, data)
    if not any(event.type in _ENDING_EVENTS for event in held):
        held.append(failure)
    if not any(event.type == protocol.EXECUTING for event in held):
        held.append(protocol.executing(item.prompt_id, None))
    return ExecutionOutcome(status="error", error=data, messages=[(failure.type, failure.data)])
