"""Property-based fuzzing: random JSON and random graphs at the validator and at a real server's
POST /api/prompt. Whatever arrives, the answer is a success or a structured 400 and the server stays
healthy. Bounded example counts keep the file to seconds."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_helpers import sum_prompt
from support.server_fakes import FakePack
from test_durability import ServerProcess

from latentloom.api import NodeRegistry
from latentloom.engine.errors import GraphValidationError
from latentloom.engine.prompt import validate_prompt

NODE_TYPES = ("TestNumber", "TestAdd", "TestSlow", "TestSaveText", "TestFail")
INPUT_NAMES = ("value", "a", "b", "steps", "step_seconds", "filename_prefix")

json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=25,
)
node_ids = st.sampled_from([str(index) for index in range(6)]) | st.text(max_size=3)
links = st.tuples(node_ids, st.integers(-2, 3)).map(list)
input_values = links | json_scalars | st.integers(-5, 5)
nodes = st.fixed_dictionaries(
    {
        "class_type": st.sampled_from(NODE_TYPES) | st.text(max_size=6),
        "inputs": st.dictionaries(st.sampled_from(INPUT_NAMES), input_values, max_size=4),
    }
)
graphs = st.dictionaries(node_ids, nodes | json_values, max_size=8)


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> NodeRegistry:
    registry = NodeRegistry()
    pack = FakePack(tmp_path_factory.mktemp("fuzz_out"))
    for node_class in FakePack.NODE_TYPES:
        registry.register(node_class(pack), source="fake_pack")
    return registry


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=graphs | json_values)
def test_the_validator_only_ever_accepts_or_lists_problems(registry, prompt):
    try:
        graph = validate_prompt(prompt, registry)
    except GraphValidationError as error:
        assert error.problems and all(problem.message for problem in error.problems)
    else:
        assert graph.outputs and set(graph.outputs) <= set(prompt)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = ServerProcess(Path(tmp_path_factory.mktemp("fuzz_server")))
    yield process
    process.stop(signal.SIGTERM)


def _post(server: ServerProcess, data: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/api/prompt", data=data)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


bodies = (
    st.binary(max_size=200)
    | json_values.map(lambda value: json.dumps(value).encode())
    | graphs.map(lambda prompt: json.dumps({"prompt": prompt}).encode())
    | st.builds(lambda prompt, extra: json.dumps({"prompt": prompt, **extra}).encode(), graphs, st.dictionaries(
        st.sampled_from(["number", "front", "client_id", "extra_data", "partial_execution_targets"]), json_values
    ))
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_the_prompt_route_answers_every_body_with_success_or_a_structured_400(server, body):
    status, answer = _post(server, body)
    if status == 200:
        assert set(answer) >= {"prompt_id", "number", "node_errors"}
    else:
        assert status == 400 and set(answer["error"]) >= {"type", "message"}


def test_after_the_fuzzing_the_server_still_runs_a_prompt(server):
    # Fuzzed prompts may be valid and slow (TestSlow for hours): drop them first.
    server.request("/api/queue", {"clear": True})
    server.request("/api/interrupt", {})
    status, answer = _post(server, json.dumps({"prompt": sum_prompt(30, 12)}).encode())
    assert status == 200
    deadline = time.monotonic() + 30
    while (entry := server.history(answer["prompt_id"])) is None:
        assert time.monotonic() < deadline and server.process.poll() is None
        time.sleep(0.05)
    assert entry["status"]["status_str"] == "success"
