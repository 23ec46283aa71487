"""The wire shapes: ComfyUI's websocket events and its /prompt 400 body."""

from __future__ import annotations

import json
import time

import pytest

from latentloom.engine import (
    EVENT_TYPES,
    GraphValidationError,
    NodeExecutionError,
    Problem,
    protocol,
    validate_prompt,
)
from latentloom.engine import validation_error_body as body_of

from .fakes import Nodes


def test_event_types_are_comfyuis_names():
    assert EVENT_TYPES == {
        "status",
        "execution_start",
        "execution_cached",
        "executing",
        "progress",
        "executed",
        "execution_success",
        "execution_error",
        "execution_interrupted",
    }


def test_event_goes_on_the_wire_as_type_and_data():
    event = protocol.executing("p1", "5")
    assert event.to_wire() == {"type": "executing", "data": {"node": "5", "display_node": "5", "prompt_id": "p1"}}
    assert json.loads(json.dumps(event.to_wire())) == event.to_wire()


def test_status_with_and_without_sid():
    assert protocol.status(3).data == {"status": {"exec_info": {"queue_remaining": 3}}}
    assert protocol.status(0, sid="abc").data == {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "abc"}


def test_timestamps_are_integer_milliseconds_now():
    before = time.time() * 1000
    stamp = protocol.execution_start("p").data["timestamp"]
    after = time.time() * 1000
    assert isinstance(stamp, int) and before - 1 <= stamp <= after + 1


def test_payload_keys_of_every_constructor():
    error = NodeExecutionError("3", "KSampler", "boom", exception_type="ValueError", traceback=["tb"])
    events = {
        "execution_start": protocol.execution_start("p", timestamp=1),
        "execution_cached": protocol.execution_cached("p", ["1", "2"], timestamp=1),
        "executing": protocol.executing("p", None),
        "progress": protocol.progress("p", "3", 2, 20),
        "executed": protocol.executed("p", "9", {"images": []}),
        "execution_success": protocol.execution_success("p", timestamp=1),
        "execution_error": protocol.execution_error("p", error, executed=["1"], current_outputs=["1"], timestamp=1),
        "execution_interrupted": protocol.execution_interrupted(
            "p", node_id="3", node_type="KSampler", executed=["1"], timestamp=1
        ),
    }
    assert {name: event.type for name, event in events.items()} == {name: name for name in events}
    assert events["execution_start"].data == {"prompt_id": "p", "timestamp": 1}
    assert events["execution_cached"].data == {"nodes": ["1", "2"], "prompt_id": "p", "timestamp": 1}
    assert events["executing"].data == {"node": None, "display_node": None, "prompt_id": "p"}
    assert events["progress"].data == {"value": 2, "max": 20, "prompt_id": "p", "node": "3"}
    assert events["executed"].data == {"node": "9", "display_node": "9", "output": {"images": []}, "prompt_id": "p"}
    assert events["execution_success"].data == {"prompt_id": "p", "timestamp": 1}
    assert events["execution_error"].data == {
        "prompt_id": "p",
        "node_id": "3",
        "node_type": "KSampler",
        "executed": ["1"],
        "exception_message": "boom",
        "exception_type": "ValueError",
        "traceback": ["tb"],
        "current_inputs": {},
        "current_outputs": ["1"],
        "timestamp": 1,
    }
    assert events["execution_interrupted"].data == {
        "prompt_id": "p",
        "node_id": "3",
        "node_type": "KSampler",
        "executed": ["1"],
        "timestamp": 1,
    }


def test_progress_preview_is_not_part_of_the_wire():
    event = protocol.progress("p", "3", 1, 2, preview=object())
    assert event.preview is not None
    assert event.to_wire() == {"type": "progress", "data": {"value": 1, "max": 2, "prompt_id": "p", "node": "3"}}


# ---- the 400 body ---------------------------------------------------------------------------------


def _error(*problems: Problem, dependent_outputs=None) -> GraphValidationError:
    return GraphValidationError(problems, dependent_outputs=dependent_outputs)


def test_body_for_input_problems_is_prompt_outputs_failed_validation():
    error = _error(
        Problem("3", "KSampler", "steps", "value_bigger_than_max", "value 200 is bigger than the maximum 100"),
        Problem("3", "KSampler", "seed", "required_input_missing", "required input is missing"),
        Problem("5", "Checked", None, "custom_validation_failed", "low above high"),
        dependent_outputs={"3": ["9"], "5": ["5"]},
    )
    body = body_of(error)
    assert body["error"] == {
        "type": "prompt_outputs_failed_validation",
        "message": "Prompt outputs failed validation",
        "details": "node 3 (KSampler), input 'steps': value 200 is bigger than the maximum 100\n"
        "node 3 (KSampler), input 'seed': required input is missing\n"
        "node 5 (Checked): low above high",
        "extra_info": {},
    }
    assert body["node_errors"] == {
        "3": {
            "errors": [
                {
                    "type": "value_bigger_than_max",
                    "message": "value 200 is bigger than the maximum 100",
                    "details": "steps",
                    "extra_info": {"input_name": "steps"},
                },
                {
                    "type": "required_input_missing",
                    "message": "required input is missing",
                    "details": "seed",
                    "extra_info": {"input_name": "seed"},
                },
            ],
            "dependent_outputs": ["9"],
            "class_type": "KSampler",
        },
        "5": {
            "errors": [
                {"type": "custom_validation_failed", "message": "low above high", "details": "", "extra_info": {}}
            ],
            "dependent_outputs": ["5"],
            "class_type": "Checked",
        },
    }


@pytest.mark.parametrize("kind", ["invalid_prompt", "prompt_no_outputs"])
def test_prompt_level_problem_becomes_the_top_level_error(kind):
    body = body_of(_error(Problem(None, None, None, kind, "what was wrong")))
    assert body["error"]["type"] == kind
    assert body["error"]["details"] == "what was wrong"
    assert body["node_errors"] == {}


def test_missing_node_type_is_the_top_level_error_and_other_problems_stay_listed():
    body = body_of(
        _error(
            Problem("2", "Const", "value", "value_bigger_than_max", "too big"),
            Problem("7", "FancyNode", None, "missing_node_type", "node type 'FancyNode' not found"),
        )
    )
    assert body["error"] == {
        "type": "missing_node_type",
        "message": "Node 'FancyNode' not found. The custom node may not be installed.",
        "details": "Node ID '#7'",
        "extra_info": {"node_id": "7", "class_type": "FancyNode"},
    }
    assert set(body["node_errors"]) == {"2", "7"}


def test_body_of_a_real_validation_error_is_strict_json():
    prompt = {
        "1": {"class_type": "Const", "inputs": {"value": float("nan")}},
        "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}},
    }
    with pytest.raises(GraphValidationError) as caught:
        validate_prompt(prompt, Nodes().registry)
    body = json.loads(json.dumps(body_of(caught.value), allow_nan=False))
    assert body["node_errors"]["1"]["errors"][0]["type"] == "invalid_input_type"
    assert body["node_errors"]["1"]["dependent_outputs"] == ["2"]
