"""The ExecutionContext a running node receives: progress reports and interruption checks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from latentloom.api.errors import ExecutionInterrupted
from latentloom.engine import protocol
from latentloom.engine.protocol import Event


class NodeContext:
    """Implements ``latentloom.api.ExecutionContext`` for one node of one prompt."""

    def __init__(
        self, *, prompt_id: str, node_id: str, emit: Callable[[Event], None], interrupt: threading.Event
    ) -> None:
        self.prompt_id = prompt_id
        self.node_id = node_id
        self._emit = emit
        self._interrupt = interrupt

    def progress(self, value: float, total: float, *, preview: Any = None) -> None:
        """Send a progress event, then stop here if the user interrupted."""
        self._emit(protocol.progress(self.prompt_id, self.node_id, value, total, preview=preview))
        self.check_interrupted()

    def check_interrupted(self) -> None:
        if self._interrupt.is_set():
            raise ExecutionInterrupted(f"prompt {self.prompt_id} interrupted at node {self.node_id}")
