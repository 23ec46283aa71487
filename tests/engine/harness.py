"""Runs prompts through validate_prompt + Executor with fake nodes, recording every event."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from latentloom.engine import Event, ExecutionOutcome, Executor, OutputCache, validate_prompt

from .fakes import Nodes


class Harness:
    def __init__(self, *, cache: OutputCache | None = None) -> None:
        self.nodes = Nodes()
        self.cache = cache if cache is not None else OutputCache(ram_budget_bytes=None)
        self.executor = Executor(self.nodes.registry, cache=self.cache)
        self.interrupt = threading.Event()
        self.events: list[Event] = []
        self._ids = itertools.count(1)

    def run(
        self,
        prompt: Mapping[str, Any],
        *,
        outputs: Sequence[str] | None = None,
        force: bool = False,
        extra_data: Mapping[str, Any] | None = None,
    ) -> ExecutionOutcome:
        """Validate and run one prompt; ``events`` then holds exactly this run's events."""
        graph = validate_prompt(prompt, self.nodes.registry, outputs=outputs)
        self.events = []
        return self.executor.run(
            graph,
            prompt_id=f"p{next(self._ids)}",
            emit=self.events.append,
            interrupt=self.interrupt,
            extra_data=extra_data,
            force=force,
        )

    def counts_during(self, prompt: Mapping[str, Any], **kwargs: Any) -> dict[str, int]:
        """How many times each node type ran during one run of ``prompt``."""
        before = {node.schema.type: node.count for node in self.nodes.all()}
        self.run(prompt, **kwargs)
        after = {node.schema.type: node.count for node in self.nodes.all()}
        return {name: after[name] - before[name] for name in after if after[name] != before[name]}

    def types(self) -> list[str]:
        return [event.type for event in self.events]

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [event.data for event in self.events if event.type == event_type]
