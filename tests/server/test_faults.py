"""Faults during a run: nodes that raise (out-of-memory included), clients that vanish or flood the
websocket. Each time the worker survives and the next prompt runs."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web
from server_helpers import (
    connect,
    events_until_done,
    of_prompt,
    slow_prompt,
    submit,
    sum_prompt,
    wait_for_event,
)

from latentloom.api import IntInput, NodeSchema, NodeType, Output, StringInput, hookimpl
from server.composition import build_app

pytestmark = pytest.mark.asyncio


class OutOfMemoryError(RuntimeError):
    """Named like torch.cuda.OutOfMemoryError, without torch."""


_FAULTS = {
    "memory": lambda: MemoryError("simulated: the host ran out of memory"),
    "cuda_oom": lambda: OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
    "bug": lambda: KeyError("a plugin bug"),
    "exit": lambda: SystemExit(3),
}


class FaultySampler(NodeType):
    """Reports ``steps_before`` progress steps, as a sampler does, then raises the chosen fault."""

    schema = NodeSchema(
        type="TestFaultySampler",
        category="testing",
        required=(IntInput("value"), IntInput("steps_before", default=2, min=0, max=100), StringInput("fault")),
        outputs=(Output("INT"),),
    )

    def execute(self, ctx, value, steps_before, fault):
        for step in range(steps_before):
            time.sleep(0.005)
            ctx.progress(step + 1, steps_before + 1)
        raise _FAULTS[fault]()


class FaultPack:
    __name__ = "fault_pack"

    @hookimpl
    def register_nodes(self, registry, services):
        registry.register(FaultySampler(), source="fault_pack")


@pytest.fixture
def app(config, fake_pack) -> web.Application:
    return build_app(config, extra_packs=[fake_pack, FaultPack()])


def _faulty(fault: str) -> dict:
    return {
        "1": {"class_type": "TestFaultySampler", "inputs": {"value": 1, "steps_before": 2, "fault": fault}},
        "2": {"class_type": "TestSaveText", "inputs": {"value": ["1", 0], "filename_prefix": "never"}},
    }


@pytest.mark.parametrize(
    ("fault", "exception_type"),
    [("memory", "MemoryError"), ("cuda_oom", "OutOfMemoryError"), ("bug", "KeyError")],
)
async def test_a_node_that_fails_mid_sampling_fails_its_prompt_and_the_next_prompt_runs(
    client, config, fault, exception_type
):
    ws = await connect(client, "alice")
    failing = (await submit(client, _faulty(fault), client_id="alice"))["prompt_id"]
    following = (await submit(client, sum_prompt(4, 5), client_id="alice"))["prompt_id"]

    events = of_prompt(await events_until_done(ws, failing), failing)
    types = [event["type"] for event in events]
    assert types.count("progress") == 2 and "execution_error" in types and "execution_success" not in types
    error = next(event["data"] for event in events if event["type"] == "execution_error")
    assert error["node_id"] == "1" and error["node_type"] == "TestFaultySampler"
    assert error["exception_type"].endswith(exception_type)
    assert str(_FAULTS[fault]()).strip("'") in error["exception_message"]

    done = of_prompt(await events_until_done(ws, following), following)
    assert [event["type"] for event in done][-2:] == ["execution_success", "executing"]
    history = await (await client.get("/api/history")).json()
    assert history[failing]["status"]["status_str"] == "error"
    assert history[following]["status"]["status_str"] == "success"
    assert not list(config.folders().output.glob("never_*"))
    await ws.close()


async def test_a_node_that_calls_sys_exit_fails_its_prompt_but_not_the_worker(client):
    ws = await connect(client, "alice")
    failing = (await submit(client, _faulty("exit"), client_id="alice"))["prompt_id"]
    following = (await submit(client, sum_prompt(2, 2), client_id="alice"))["prompt_id"]
    events = of_prompt(await events_until_done(ws, failing), failing)
    error = next(event["data"] for event in events if event["type"] == "execution_error")
    assert error["exception_type"] == "SystemExit"
    done = of_prompt(await events_until_done(ws, following), following)
    assert done[-2]["type"] == "execution_success"
    await ws.close()


async def test_a_client_that_disappears_mid_run_does_not_stop_the_worker(client):
    leaver = await connect(client, "leaver")
    slow = (await submit(client, slow_prompt(steps=20, step_seconds=0.01), client_id="leaver"))["prompt_id"]
    await wait_for_event(leaver, "progress", prompt_id=slow)
    await leaver.close()  # gone while its prompt still reports progress to it

    stayer = await connect(client, "stayer")
    following = (await submit(client, sum_prompt(1, 1), client_id="stayer"))["prompt_id"]
    events = of_prompt(await events_until_done(stayer, following), following)
    assert events[-2]["type"] == "execution_success"
    history = await (await client.get("/api/history")).json()
    assert history[slow]["status"]["status_str"] == "success"


async def test_a_client_flooding_the_websocket_does_not_starve_the_others(client):
    flooder = await connect(client, "flooder")
    watcher = await connect(client, "watcher")

    async def flood() -> int:
        sent = 0
        for _ in range(3000):
            await flooder.send_str('{"type": "feature_flags", "data": {"x": "' + "y" * 200 + '"}}')
            sent += 1
        await flooder.send_bytes(b"\x00" * 50_000)
        return sent

    flooding = asyncio.create_task(flood())
    prompt_id = (await submit(client, slow_prompt(steps=5), client_id="watcher"))["prompt_id"]
    events = of_prompt(await events_until_done(watcher, prompt_id), prompt_id)
    assert [event["type"] for event in events].count("progress") == 5
    assert await flooding == 3000
    assert (await client.get("/api/queue")).status == 200
    await flooder.close()
    await watcher.close()
