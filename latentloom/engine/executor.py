"""Runs a validated Graph: cache lookups, the nodes that must run, and the events that report it.

Only the ancestors of the requested outputs run, in the graph's topological order. A node whose result
is in the cache (same content key) is not run; an output node served from the cache still reports its
stored UI with an ``executed`` event, so clients get their images. The first node that fails or is
interrupted ends the prompt; every result already stored stays valid for the next prompt.

Lazy inputs: what feeds a lazy input runs only when its node's ``check_lazy_status`` asks for it
(``demand.DemandSchedule`` plans it then); the node is asked again after each round, and runs, with an
``executing`` event, once it asks for nothing new. A node asking for an input it does not have, or one
that is not connected, fails, as in ComfyUI. Cache keys stay static: a node's key covers every input it
could read, lazy or not, so an unchanged graph is served from the cache whichever branch ran, and the
unused branch's fingerprints count (a volatile node there makes its lazy consumer volatile too).
A result feeding a lazy input is kept in memory until its lazy consumer has run, or the prompt ends.

Interruption: the executor never clears ``interrupt``. The owner of the queue clears it before each
prompt; a prompt that starts with the flag already set ends at once as interrupted, before any node.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from latentloom.api.errors import ExecutionInterrupted
from latentloom.api.node import NodeType
from latentloom.api.registry import NodeRegistry
from latentloom.engine import protocol
from latentloom.engine.cache import NodeOutputs, OutputCache
from latentloom.engine.cache_key import NodeKey, node_key
from latentloom.engine.context import NodeContext
from latentloom.engine.demand import DemandSchedule
from latentloom.engine.describe import error_message, full_type_name, summarize_inputs
from latentloom.engine.errors import NodeContractError, NodeExecutionError
from latentloom.engine.graph import Graph, GraphNode
from latentloom.engine.node_call import call_node, wanted_lazy_inputs
from latentloom.engine.protocol import Event


@dataclass
class ExecutionOutcome:
    status: Literal["success", "error", "interrupted"]
    ui_outputs: dict[str, dict] = field(default_factory=dict)  # node id -> UI payload, for history
    timings: dict[str, float] = field(default_factory=dict)  # node id -> seconds it ran
    executed: list[str] = field(default_factory=list)  # nodes that ran, in order
    cached: list[str] = field(default_factory=list)  # nodes served from the cache
    error: dict | None = None  # the execution_error / execution_interrupted payload
    messages: list[tuple[str, dict]] = field(default_factory=list)  # history's status.messages


class Executor:
    def __init__(self, registry: NodeRegistry, *, cache: OutputCache) -> None:
        self._registry = registry
        self._cache = cache

    @property
    def cache(self) -> OutputCache:
        return self._cache

    def run(
        self,
        graph: Graph,
        *,
        prompt_id: str,
        emit: Callable[[Event], None],
        interrupt: threading.Event,
        extra_data: Mapping | None = None,
        force: bool = False,
    ) -> ExecutionOutcome:
        """Run the graph, emitting its events. ``force`` runs every node again and refreshes the cache."""
        run = _PromptRun(
            graph,
            registry=self._registry,
            cache=self._cache,
            prompt_id=prompt_id,
            emit=emit,
            interrupt=interrupt,
            extra_data=extra_data or {},
            force=force,
        )
        try:
            return run.execute()
        finally:
            # Results may have grown since they were stored (a model keeps patched weights at its first
            # run): measure again, so the budget holds between prompts.
            self._cache.refresh()


class _Interrupted(Exception):
    def __init__(self, node: GraphNode | None) -> None:
        super().__init__("interrupted")
        self.node = node


class _PromptRun:
    """The state of one prompt's run; used once."""

    def __init__(
        self,
        graph: Graph,
        *,
        registry: NodeRegistry,
        cache: OutputCache,
        prompt_id: str,
        emit: Callable[[Event], None],
        interrupt: threading.Event,
        extra_data: Mapping,
        force: bool,
    ) -> None:
        self.graph = graph
        self.registry = registry
        self.cache = cache
        self.prompt_id = prompt_id
        self.emit = emit
        self.interrupt = interrupt
        self.extra_data = extra_data
        self.force = force
        self.run_id = uuid.uuid4().hex
        self.outcome = ExecutionOutcome(status="success")
        self.types: dict[str, NodeType] = {}
        self.keys: dict[str, NodeKey] = {}
        self.values: dict[str, NodeOutputs] = {}  # results still needed by a node yet to run
        self.uses_left: dict[str, int] = {}
        self.lazy: dict[str, frozenset[str]] = {}  # node id -> its linked lazy inputs
        self.hits: dict[str, NodeOutputs] = {}
        self.refreshed: set[bytes] = set()  # keys stored by this run (what force may reuse)

    def execute(self) -> ExecutionOutcome:
        self._status(protocol.execution_start(self.prompt_id))
        try:
            if self.interrupt.is_set():
                raise _Interrupted(None)
            self._compute_keys()
            self.hits = {} if self.force else self._lookup()
            self.outcome.cached = list(self.hits)
            self._status(protocol.execution_cached(self.prompt_id, self.hits))
            self._visit_planned()
        except _Interrupted as stop:
            self._interrupted(stop.node)
        except NodeExecutionError as error:
            self._failed(error)
        else:
            self._status(protocol.execution_success(self.prompt_id))
        # ComfyUI sends this last, after success or failure: clients take it as "prompt finished".
        self.emit(protocol.executing(self.prompt_id, None))
        return self.outcome

    # ---- before any node runs ----------------------------------------------------------------------

    def _compute_keys(self) -> None:
        for node in self.graph.nodes.values():
            try:
                node_type = self.registry.get(node.class_type)
                if node_type is None:
                    raise LookupError(f"node type {node.class_type!r} is no longer registered")
                self.types[node.id] = node_type
                self.keys[node.id] = node_key(node, node_type, ancestors=self.keys, run_id=self.run_id)
            except Exception as error:
                raise _failure(node, error, inputs={}) from error

    def _lookup(self) -> dict[str, NodeOutputs]:
        """Cached results of the graph's nodes, in graph order (the lookup also marks them recently used)."""
        hits = {}
        for node_id, key in self.keys.items():
            if not key.volatile:
                stored = self.cache.get(key.digest)
                if stored is not None:
                    hits[node_id] = stored
        return hits

    def _find_lazy_links(self) -> None:
        """Which linked inputs are lazy; their sources' results are kept until the consumer has run."""
        for node in self.graph.nodes.values():
            schema = self.types[node.id].schema
            lazy = frozenset(name for name in node.links if getattr(schema.input(name), "lazy", False))
            self.lazy[node.id] = lazy
            if node.id not in self.hits:
                self._count_uses({node.links[name].source for name in lazy})

    def _count_uses(self, sources: set[str]) -> None:
        for source in sources:
            self.uses_left[source] = self.uses_left.get(source, 0) + 1

    # ---- visiting nodes ----------------------------------------------------------------------------

    def _visit_planned(self) -> None:
        """Visit the outputs and what they need, in graph order, planning lazy sources when asked for."""
        self._find_lazy_links()
        schedule = DemandSchedule(self.graph, lazy=self.lazy, served=self.hits)
        self._count_eager_uses(schedule, schedule.require(self.graph.outputs))
        while (node_id := schedule.next()) is not None:
            if node_id in self.hits:
                self._serve(node_id, self.hits[node_id])
            else:
                wanted = self._run_node(node_id)
                if wanted:
                    self._count_eager_uses(schedule, schedule.wait(node_id, wanted))
                    continue
            schedule.finish(node_id)

    def _count_eager_uses(self, schedule: DemandSchedule, planned: list[str]) -> None:
        for node_id in planned:
            self._count_uses(schedule.eager_sources(node_id))

    def _serve(self, node_id: str, stored: NodeOutputs) -> None:
        self._keep(node_id, stored)
        if stored.ui:
            self._show(node_id, stored.ui)

    def _run_node(self, node_id: str) -> set[str]:
        """Run the node, or return the nodes feeding the lazy inputs it asks for first."""
        node = self.graph.nodes[node_id]
        key = self.keys[node_id]
        reused = self._produced_earlier(key)
        if reused is not None:  # an identical node earlier in this prompt already made it
            self.outcome.cached.append(node_id)
            self._release_sources(node)
            self._serve(node_id, reused)
            return set()
        if self.interrupt.is_set():
            raise _Interrupted(node)
        node_type = self.types[node_id]
        inputs = self._inputs(node, node_type)
        ctx = NodeContext(prompt_id=self.prompt_id, node_id=node_id, emit=self.emit, interrupt=self.interrupt)
        wanted = self._wanted_sources(node, node_type, inputs, ctx=ctx)
        if wanted:
            return wanted
        self.emit(protocol.executing(self.prompt_id, node_id))
        started = time.perf_counter()
        try:
            result = call_node(node_type, inputs, ctx=ctx)
            if not key.volatile and self.cache.put(key.digest, result):
                self.refreshed.add(key.digest)
        except ExecutionInterrupted:
            raise _Interrupted(node) from None
        except Exception as error:
            raise _failure(node, error, inputs=inputs) from error
        self.outcome.timings[node_id] = time.perf_counter() - started
        self.outcome.executed.append(node_id)
        self._release_sources(node)
        self._keep(node_id, result)
        if result.ui:
            self._show(node_id, result.ui)
        return set()

    def _wanted_sources(
        self, node: GraphNode, node_type: NodeType, inputs: Mapping[str, Sequence[Any]], *, ctx: NodeContext
    ) -> set[str]:
        """The sources of the unevaluated lazy inputs that check_lazy_status asks for (not asked: none)."""
        lazy = self.lazy[node.id]
        pending = {name: node.links[name].source for name in lazy if self._result_of(node, name) is None}
        if not pending:
            return set()
        try:
            wanted = wanted_lazy_inputs(node_type, inputs, ctx=ctx)
            for name in wanted:
                if name not in inputs:
                    have = "no link to that input" if node_type.schema.input(name) else "no such input"
                    raise NodeContractError(f"asked for {name!r}, but the node has {have}")
        except ExecutionInterrupted:
            raise _Interrupted(node) from None
        except Exception as error:
            raise _failure(node, error, inputs=inputs, during="check_lazy_status") from error
        return {pending[name] for name in wanted if name in pending}

    def _produced_earlier(self, key: NodeKey) -> NodeOutputs | None:
        if key.volatile or key.digest not in self.cache:
            return None
        if self.force and key.digest not in self.refreshed:
            return None
        return self.cache.get(key.digest)

    def _inputs(self, node: GraphNode, node_type: NodeType) -> dict[str, Sequence[Any]]:
        """Input name -> list of items: literals are one item, links carry the source output's items."""
        inputs: dict[str, Sequence[Any]] = {name: (value,) for name, value in node.literals.items()}
        for name, link in node.links.items():
            source = self._result_of(node, name)
            inputs[name] = (None,) if source is None else source.outputs[link.output_index]
        for hidden in node_type.schema.hidden:
            inputs[hidden.name] = (self._hidden_value(hidden.kind, node),)
        return inputs

    def _result_of(self, node: GraphNode, name: str) -> NodeOutputs | None:
        """The result feeding a linked input: None only for a lazy input not evaluated (yet)."""
        source = node.links[name].source
        if name not in self.lazy[node.id]:
            return self.values[source]
        return self.values.get(source) or self.hits.get(source)

    def _hidden_value(self, kind: str, node: GraphNode) -> Any:
        if kind == "PROMPT":
            return self.graph.prompt
        if kind == "EXTRA_PNGINFO":
            return self.extra_data.get("extra_pnginfo")
        if kind == "UNIQUE_ID":
            return node.id
        return self.graph  # DYNPROMPT: our graph is the view of the prompt that is running

    def _keep(self, node_id: str, result: NodeOutputs) -> None:
        if self.uses_left.get(node_id, 0) > 0:
            self.values[node_id] = result

    def _release_sources(self, node: GraphNode) -> None:
        """Drop results that no node still to run reads, so an uncached run holds only what it needs.

        Mirrors the counting: one use per distinct eager source and one per distinct lazy source.
        """
        lazy = self.lazy[node.id]
        eager = {link.source for name, link in node.links.items() if name not in lazy}
        for sources in (eager, {node.links[name].source for name in lazy}):
            for source in sources:
                self.uses_left[source] -= 1
                if self.uses_left[source] == 0:
                    self.values.pop(source, None)

    def _show(self, node_id: str, ui: Mapping[str, Any]) -> None:
        self.outcome.ui_outputs[node_id] = dict(ui)
        self.emit(protocol.executed(self.prompt_id, node_id, ui))

    # ---- how the prompt ended ----------------------------------------------------------------------

    def _status(self, event: Event) -> None:
        self.outcome.messages.append((event.type, event.data))
        self.emit(event)

    def _interrupted(self, node: GraphNode | None) -> None:
        self.outcome.status = "interrupted"
        event = protocol.execution_interrupted(
            self.prompt_id,
            node_id=node.id if node else None,
            node_type=node.class_type if node else None,
            executed=self.outcome.executed,
        )
        self.outcome.error = event.data
        self._status(event)

    def _failed(self, error: NodeExecutionError) -> None:
        self.outcome.status = "error"
        have_results = set(self.outcome.executed) | set(self.outcome.cached)
        event = protocol.execution_error(
            self.prompt_id,
            error,
            executed=self.outcome.executed,
            current_outputs=[n for n in self.graph.nodes if n in have_results],
        )
        self.outcome.error = event.data
        self._status(event)


def _failure(
    node: GraphNode, error: Exception, *, inputs: Mapping[str, Sequence[Any]], during: str = ""
) -> NodeExecutionError:
    """The NodeExecutionError for an exception a node raised (its message keeps any input name).

    ``during`` names the node method that raised when it was not ``execute``.
    """
    message = error_message(error)
    return NodeExecutionError(
        node.id,
        node.class_type,
        f"{during}: {message}" if during else message,
        exception_type=full_type_name(type(error)),
        traceback=traceback.format_tb(error.__traceback__),
        current_inputs=summarize_inputs(inputs),
    )
