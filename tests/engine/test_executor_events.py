"""Executor events (order and payloads), hidden inputs, node errors and recovery, interruption."""

from __future__ import annotations

import json
import threading

from latentloom.api import NodeRegistry, NodeResult, NodeSchema, Output
from latentloom.engine import Executor, OutputCache, validate_prompt
from latentloom.engine.describe import summarize_inputs

from .builder import txt2img
from .fakes import FakeNode


def test_event_order_of_a_first_run(harness, p):
    txt2img(p)
    outcome = harness.run(p.build())
    assert [(e.type, e.data.get("node")) for e in harness.events] == [
        ("execution_start", None),
        ("execution_cached", None),
        ("executing", "1"),
        ("executing", "2"),
        ("executing", "3"),
        ("progress", "3"),
        ("progress", "3"),
        ("progress", "3"),
        ("executing", "4"),
        ("executed", "4"),
        ("execution_success", None),
        ("executing", None),
    ]
    assert outcome.status == "success"
    assert outcome.executed == ["1", "2", "3", "4"]
    assert set(outcome.timings) == {"1", "2", "3", "4"} and all(t >= 0 for t in outcome.timings.values())


def test_event_payloads_carry_the_prompt_id(harness, p):
    txt2img(p)
    harness.run(p.build())
    assert {e.data["prompt_id"] for e in harness.events} == {"p1"}
    progress = harness.of_type("progress")
    assert [(d["value"], d["max"], d["node"]) for d in progress] == [(1, 3, "3"), (2, 3, "3"), (3, 3, "3")]
    assert harness.of_type("execution_cached") == [
        {"nodes": [], "prompt_id": "p1", "timestamp": harness.of_type("execution_cached")[0]["timestamp"]}
    ]


def test_cached_run_events(harness, p):
    txt2img(p)
    harness.run(p.build())
    harness.run(p.build())
    assert harness.types() == ["execution_start", "execution_cached", "executed", "execution_success", "executing"]
    assert harness.of_type("execution_cached")[0]["nodes"] == ["1", "2", "3", "4"]


def test_messages_are_the_status_events_like_comfyui_history(harness, p):
    txt2img(p)
    outcome = harness.run(p.build())
    assert [name for name, _ in outcome.messages] == ["execution_start", "execution_cached", "execution_success"]
    assert outcome.messages[0][1] == harness.of_type("execution_start")[0]


def test_hidden_inputs_are_filled(harness, p):
    txt2img(p)
    prompt = p.build()
    harness.run(prompt, extra_data={"extra_pnginfo": {"workflow": {"nodes": []}}})
    call = harness.nodes.saver.calls[-1]
    assert call["prompt"] == prompt
    assert call["extra_pnginfo"] == {"workflow": {"nodes": []}}
    assert call["unique_id"] == "4"


def test_missing_extra_pnginfo_is_none(harness, p):
    txt2img(p)
    harness.run(p.build())
    assert harness.nodes.saver.calls[-1]["extra_pnginfo"] is None


# ---- errors ---------------------------------------------------------------------------------------


def _failing_prompt(p, mode: str):
    value = p.add("Const", value=3)
    fail = p.add("Fail", value=value.out(), mode=mode)
    after = p.add("Show", value=fail.out())
    p.add("Show", value=value.out())
    return value, fail, after


def test_node_error_stops_the_prompt_and_reports_it(harness, p):
    _failing_prompt(p, "value")
    outcome = harness.run(p.build())
    assert outcome.status == "error"
    assert outcome.executed == ["1"]
    assert harness.nodes.show.count == 0  # neither the downstream node nor the later output ran
    error = outcome.error
    assert error["node_id"] == "2" and error["node_type"] == "Fail"
    assert error["exception_type"] == "ValueError"
    assert error["exception_message"] == "bad value 3"
    assert error["executed"] == ["1"]
    assert error["current_inputs"] == {"value": [3], "mode": ["value"]}
    assert error["current_outputs"] == ["1"]
    assert any("bad value" in line or "raise ValueError" in line for line in error["traceback"])
    assert harness.types()[-2:] == ["execution_error", "executing"]
    assert harness.of_type("execution_error") == [error]
    assert [name for name, _ in outcome.messages] == ["execution_start", "execution_cached", "execution_error"]


def test_node_input_error_keeps_the_input_name(harness, p):
    _failing_prompt(p, "input")
    error = harness.run(p.build()).error
    assert error["exception_type"] == "latentloom.api.errors.NodeInputError"
    assert error["exception_message"] == "input 'value': cannot use 3"


def test_next_run_after_an_error_works(harness, p):
    _, fail, _ = _failing_prompt(p, "value")
    harness.run(p.build())
    p.set(fail, mode="pass")
    outcome = harness.run(p.build())
    assert outcome.status == "success"
    assert outcome.executed == ["2", "3", "4"]
    assert outcome.ui_outputs == {"3": {"text": ["3"]}, "4": {"text": ["3"]}}


def test_same_failing_prompt_fails_again_rather_than_caching_the_failure(harness, p):
    _failing_prompt(p, "value")
    harness.run(p.build())
    assert harness.run(p.build()).status == "error"
    assert harness.nodes.fail.count == 2


def _single_node_registry(schema: NodeSchema, fn) -> tuple[NodeRegistry, FakeNode]:
    node = FakeNode(schema, fn)
    registry = NodeRegistry()
    registry.register(node)
    return registry, node


def _run_single(registry) -> dict:
    graph = validate_prompt({"1": {"class_type": "Odd", "inputs": {}}}, registry)
    events = []
    outcome = Executor(registry, cache=OutputCache()).run(
        graph, prompt_id="x", emit=events.append, interrupt=threading.Event()
    )
    assert outcome.status == "error"
    return outcome.error


def test_wrong_number_of_outputs_is_a_node_error():
    schema = NodeSchema(type="Odd", output_node=True, outputs=(Output("INT"), Output("INT")))
    registry, _ = _single_node_registry(schema, lambda ctx: (1,))
    error = _run_single(registry)
    assert error["exception_type"] == "latentloom.engine.errors.NodeContractError"
    assert error["exception_message"] == "execute() returned 1 output(s); the schema declares 2"


def test_returning_neither_tuple_nor_result_is_a_node_error():
    schema = NodeSchema(type="Odd", output_node=True, outputs=(Output("INT"),))
    registry, _ = _single_node_registry(schema, lambda ctx: 5)
    assert "must return a tuple or a NodeResult, got int" in _run_single(registry)["exception_message"]


def test_failing_fingerprint_is_reported_on_its_node():
    class BadFingerprint(FakeNode):
        def fingerprint(self, **inputs):
            raise OSError("file vanished")

    node = BadFingerprint(NodeSchema(type="Odd", output_node=True), lambda ctx: NodeResult())
    registry = NodeRegistry()
    registry.register(node)
    error = _run_single(registry)
    assert (error["node_id"], error["exception_type"], error["exception_message"]) == ("1", "OSError", "file vanished")
    assert node.count == 0


def test_current_inputs_are_short_json_safe_descriptions():
    class Tensorish:
        shape = (1, 4, 8, 8)
        dtype = "float32"

    summary = summarize_inputs({"t": [Tensorish()], "s": ["y" * 500], "n": [float("nan")], "l": list(range(20))})
    assert summary == {
        "t": ["Tensorish(shape=[1, 4, 8, 8], dtype=float32)"],
        "s": ["y" * 200 + "..."],
        "n": ["nan"],
        "l": [0, 1, 2, 3, 4, 5, 6, 7, "... (12 more)"],
    }
    json.dumps(summary, allow_nan=False)


# ---- interruption ---------------------------------------------------------------------------------


def test_interrupt_from_another_thread_during_a_progress_loop(harness, p):
    p.add("Show", value=p.add("Wait", steps=500).out())
    graph = validate_prompt(p.build(), harness.nodes.registry)
    events = []
    result = {}

    def work():
        result["outcome"] = harness.executor.run(graph, prompt_id="w", emit=events.append, interrupt=harness.interrupt)

    worker = threading.Thread(target=work)
    worker.start()
    assert harness.nodes.started.wait(timeout=10)
    harness.interrupt.set()
    worker.join(timeout=10)
    assert not worker.is_alive()
    outcome = result["outcome"]
    assert outcome.status == "interrupted"
    assert outcome.error == {
        "prompt_id": "w",
        "node_id": "1",
        "node_type": "Wait",
        "executed": [],
        "timestamp": outcome.error["timestamp"],
    }
    progress = [e for e in events if e.type == "progress"]
    assert 1 <= len(progress) < 500
    assert [e.type for e in events][-2:] == ["execution_interrupted", "executing"]
    assert harness.nodes.show.count == 0
    assert harness.interrupt.is_set()  # the executor leaves the flag to the queue owner


def test_run_that_starts_interrupted_runs_nothing(harness, p):
    txt2img(p)
    harness.interrupt.set()
    outcome = harness.run(p.build())
    assert outcome.status == "interrupted"
    assert outcome.error["node_id"] is None and outcome.error["executed"] == []
    assert harness.nodes.counts() == {}
    assert harness.types() == ["execution_start", "execution_interrupted", "executing"]


def test_interrupted_node_result_is_not_cached_and_the_next_run_completes(harness, p):
    p.add("Show", value=p.add("Wait", steps=3).out())
    harness.nodes.started.clear()

    def interrupt_on_first_progress(event):
        if event.type == "progress":
            harness.interrupt.set()

    graph = validate_prompt(p.build(), harness.nodes.registry)
    outcome = harness.executor.run(graph, prompt_id="a", emit=interrupt_on_first_progress, interrupt=harness.interrupt)
    assert outcome.status == "interrupted" and outcome.error["node_id"] == "1"
    harness.interrupt.clear()
    assert harness.run(p.build()).executed == ["1", "2"]
