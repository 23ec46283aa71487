"""Resume after a restart: what the store kept goes back into the history and the queue.

Pending prompts are validated again (the nodes or model files may have changed while the server was
down) and queued in their old order; one that no longer validates goes to history as an error. The
prompt that was running when the server died is recorded as interrupted and not run again (see
server.store for why).
"""

from __future__ import annotations

from typing import Any

from latentloom.api import NodeRegistry
from latentloom.engine.errors import GraphValidationError
from latentloom.engine.prompt import validate_prompt
from latentloom.engine.protocol import now_ms, validation_error_body
from server.history import History, interrupted_by_restart_entry
from server.queue import PromptQueue, QueueItem
from server.store import Recovered, StoredPrompt


def resume(recovered: Recovered, *, queue: PromptQueue, history: History, registry: NodeRegistry) -> None:
    """Blocking (it validates and writes): run it in a thread before the worker starts."""
    history.restore(recovered.history)
    recorded = {prompt_id for prompt_id, _ in recovered.history}
    for stored in recovered.interrupted:
        # Already in history: it finished just before the crash, between the two writes.
        if stored.prompt_id not in recorded:
            history.record(stored.prompt_id, interrupted_by_restart_entry(stored, timestamp=now_ms()))
        queue.finish(stored.prompt_id)
    items = []
    for stored in recovered.pending:
        try:
            graph = validate_prompt(stored.prompt, registry, outputs=stored.outputs_to_execute)
        except GraphValidationError as error:
            history.record(stored.prompt_id, _invalid_after_restart_entry(stored, validation_error_body(error)))
            queue.finish(stored.prompt_id)
            continue
        items.append(_queue_item(stored, graph))
    queue.restore(items)


def _queue_item(stored: StoredPrompt, graph: Any) -> QueueItem:
    return QueueItem(
        number=stored.number,
        prompt_id=stored.prompt_id,
        prompt=stored.prompt,
        extra_data=stored.extra_data,
        outputs_to_execute=stored.outputs_to_execute,
        graph=graph,
        client_id=stored.client_id,
        force=stored.force,
    )


def _invalid_after_restart_entry(stored: StoredPrompt, error_body: dict[str, Any]) -> dict[str, Any]:
    item = [stored.number, stored.prompt_id, stored.prompt, stored.extra_data, stored.outputs_to_execute]
    data = {"prompt_id": stored.prompt_id, "reason": "invalid_after_restart", **error_body}
    return {
        "prompt": item,
        "outputs": {},
        "status": {"status_str": "error", "completed": False, "messages": [["execution_error", data]]},
        "meta": {},
        "timings": {},
    }
