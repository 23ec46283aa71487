"""Load on a real server: 500 prompts from 20 concurrent clients, and 100 websockets at once.

Loopback only, bounded loops: every wait has a timeout (server_helpers.EVENT_TIMEOUT per event)."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter

import aiohttp
import pytest
from aiohttp import web
from server_helpers import connect, next_event, slow_prompt, sum_prompt

from latentloom.api import IntInput, NodeSchema, NodeType, Output, hookimpl
from server.composition import build_app

pytestmark = pytest.mark.asyncio

CLIENTS = 20
PROMPTS_PER_CLIENT = 25


class Gate(NodeType):
    """Holds the worker until the test opens the gate, so every prompt is queued before any runs."""

    schema = NodeSchema(
        type="TestGate", category="testing", output_node=True, required=(IntInput("value"),), outputs=(Output("INT"),)
    )

    def __init__(self, opened: threading.Event) -> None:
        self.opened = opened

    def execute(self, ctx, value):
        if not self.opened.wait(timeout=60):
            raise TimeoutError("the test never opened the gate")
        return (value,)


class GatePack:
    __name__ = "gate_pack"

    def __init__(self) -> None:
        self.opened = threading.Event()

    @hookimpl
    def register_nodes(self, registry, services):
        registry.register(Gate(self.opened), source="gate_pack")


@pytest.fixture
def gate_pack() -> GatePack:
    return GatePack()


@pytest.fixture
def app(config, fake_pack, gate_pack) -> web.Application:
    return build_app(config, extra_packs=[fake_pack, gate_pack])


async def _events_for(ws, prompt_ids: set[str]) -> list[dict]:
    """Every event until each of ``prompt_ids`` has sent ``executing`` null."""
    events, open_ids = [], set(prompt_ids)
    while open_ids:
        event = await next_event(ws)
        events.append(event)
        if event["type"] == "executing" and event["data"]["node"] is None:
            open_ids.discard(event["data"]["prompt_id"])
    return events


async def test_500_prompts_from_20_clients_run_once_each_in_priority_order(client, gate_pack):
    gate = {"g": {"class_type": "TestGate", "inputs": {"value": 0}}}
    gate_id = (await (await client.post("/api/prompt", json={"prompt": gate})).json())["prompt_id"]
    numbers = list(range(CLIENTS * PROMPTS_PER_CLIENT))
    random.Random(9).shuffle(numbers)
    sockets = [await connect(client, f"client{index}") for index in range(CLIENTS)]

    async def submit_all(index: int) -> dict[str, float]:
        mine = {}
        for number in numbers[index::CLIENTS]:
            body = {"prompt": sum_prompt(number, 1, prefix=f"c{index}"), "client_id": f"client{index}"}
            response = await client.post("/api/prompt", json=body | {"number": number})
            assert response.status == 200
            mine[(await response.json())["prompt_id"]] = number
        return mine

    submitted = await asyncio.gather(*(submit_all(index) for index in range(CLIENTS)))
    queue = await (await client.get("/api/queue")).json()
    assert len(queue["queue_pending"]) == CLIENTS * PROMPTS_PER_CLIENT
    gate_pack.opened.set()
    received = await asyncio.gather(*(_events_for(ws, set(mine)) for ws, mine in zip(sockets, submitted, strict=True)))

    number_of = {prompt_id: number for mine in submitted for prompt_id, number in mine.items()}
    history = await (await client.get("/api/history")).json()
    ran = [prompt_id for prompt_id in history if prompt_id in number_of]
    assert sorted(ran) == sorted(number_of)  # each exactly once (dict keys are unique)
    assert [number_of[prompt_id] for prompt_id in ran] == sorted(number_of.values())
    assert all(history[pid]["status"]["status_str"] == "success" for pid in ran)
    for events, mine in zip(received, submitted, strict=True):
        # Nothing lost, nothing duplicated, nothing of another client's prompts.
        # (The gate prompt has no client id: its events go to everyone.)
        prompt_events = [e for e in events if e["type"] != "status" and e["data"]["prompt_id"] != gate_id]
        assert {e["data"]["prompt_id"] for e in prompt_events} == set(mine)
        counts = Counter((e["type"], e["data"]["prompt_id"]) for e in prompt_events if e["type"] != "executing")
        for prompt_id in mine:
            for event_type in ("execution_start", "execution_cached", "executed", "execution_success"):
                assert counts[(event_type, prompt_id)] == 1, (event_type, prompt_id)
    for ws in sockets:
        await ws.close()


async def test_100_websocket_clients_at_once_all_receive_progress(client):
    # Their own session: the test client's pool (100 connections) would leave none for the POST.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def viewer(index: int) -> aiohttp.ClientWebSocketResponse:
            ws = await session.ws_connect(client.make_url(f"/ws?clientId=viewer{index}"))
            assert (await next_event(ws))["type"] == "status"
            return ws

        sockets = await asyncio.gather(*(viewer(index) for index in range(100)))
        # No client_id: a prompt's events go to every connected client.
        response = await client.post("/api/prompt", json={"prompt": slow_prompt(steps=4, step_seconds=0.02)})
        prompt_id = (await response.json())["prompt_id"]
        received = await asyncio.gather(*(_events_for(ws, {prompt_id}) for ws in sockets))
        for events in received:
            progress = [e["data"]["value"] for e in events if e["type"] == "progress"]
            assert progress == [1, 2, 3, 4]
        await asyncio.gather(*(ws.close() for ws in sockets))
