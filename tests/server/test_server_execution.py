"""Prompts through a real server: websocket events, history, cache, queue management, interrupt."""

from __future__ import annotations

import asyncio
import threading
import time

import aiohttp
import pytest
from server_helpers import (
    connect,
    events_until_done,
    next_event,
    of_prompt,
    slow_prompt,
    submit,
    sum_prompt,
    wait_for_event,
)

pytestmark = pytest.mark.asyncio


async def test_a_prompt_streams_comfyui_events_in_order_to_the_client_that_sent_it(client):
    ws = await connect(client, "alice")
    submitted = await submit(client, sum_prompt(2, 3), client_id="alice")
    prompt_id = submitted["prompt_id"]
    assert submitted["node_errors"] == {}

    events = await events_until_done(ws, prompt_id)
    sequence = [(e["type"], e["data"].get("node")) for e in of_prompt(events, prompt_id)]
    assert sequence == [
        ("execution_start", None),
        ("execution_cached", None),
        ("executing", "1"),
        ("executing", "2"),
        ("executing", "3"),
        ("executing", "4"),
        ("executed", "4"),
        ("execution_success", None),
        ("executing", None),
    ]
    by_type = {e["type"]: e["data"] for e in of_prompt(events, prompt_id)}
    assert set(by_type["execution_start"]) == {"prompt_id", "timestamp"}
    assert by_type["execution_cached"]["nodes"] == []
    assert by_type["executed"]["output"] == {
        "images": [{"filename": "sum_00000.txt", "subfolder": "", "type": "output"}]
    }
    assert by_type["executed"]["display_node"] == "4"
    # The queue size is broadcast: 1 when queued, 1 while running, 0 once finished.
    remaining = [e["data"]["status"]["exec_info"]["queue_remaining"] for e in events if e["type"] == "status"]
    assert remaining == [1, 1, 0]
    await ws.close()


async def test_history_holds_the_prompt_outputs_status_and_timings_when_success_arrives(client):
    ws = await connect(client, "alice")
    prompt = sum_prompt(20, 22)
    submitted = await submit(client, prompt, client_id="alice", extra_data={"note": "kept"})
    prompt_id = submitted["prompt_id"]
    await wait_for_event(ws, "execution_success", prompt_id=prompt_id)

    # Asked the moment success arrives: the entry is already recorded.
    history = await (await client.get(f"/api/history/{prompt_id}")).json()
    entry = history[prompt_id]
    extra_data = {"note": "kept", "client_id": "alice"}
    assert entry["prompt"] == [submitted["number"], prompt_id, prompt, extra_data, ["4"]]
    saved = {"filename": "sum_00000.txt", "subfolder": "", "type": "output"}
    assert entry["outputs"] == {"4": {"images": [saved]}}
    assert entry["status"]["status_str"] == "success"
    assert entry["status"]["completed"] is True
    messages = [m[0] for m in entry["status"]["messages"]]
    assert messages == ["execution_start", "execution_cached", "execution_success"]
    assert entry["meta"]["4"]["node_id"] == "4" and entry["meta"]["4"]["display_node"] == "4"
    assert set(entry["timings"]) == {"1", "2", "3", "4"}
    assert all(seconds >= 0 for seconds in entry["timings"].values())

    view = await client.get("/api/view", params={"filename": "sum_00000.txt", "type": "output"})
    assert view.status == 200 and await view.text() == "42"
    listing = await (await client.get("/history", params={"max_items": "1"})).json()
    assert list(listing) == [prompt_id]
    await ws.close()


async def test_an_identical_resubmission_comes_from_the_cache_and_runs_nothing(client, fake_pack):
    ws = await connect(client, "alice")
    first = await submit(client, sum_prompt(), client_id="alice")
    await events_until_done(ws, first["prompt_id"])
    runs_after_first = fake_pack.runs
    ran = [node_type for node_type, _ in runs_after_first]
    assert ran == ["TestNumber", "TestNumber", "TestAdd", "TestSaveText"]

    second = await submit(client, sum_prompt(), client_id="alice")
    events = of_prompt(await events_until_done(ws, second["prompt_id"]), second["prompt_id"])
    cached = next(e for e in events if e["type"] == "execution_cached")
    assert sorted(cached["data"]["nodes"]) == ["1", "2", "3", "4"]
    assert [e["data"]["node"] for e in events if e["type"] == "executing"] == [None]
    # The output node's stored UI is sent again, so the client still gets its file.
    executed = [e["data"] for e in events if e["type"] == "executed"]
    assert [(d["node"], d["output"]["images"][0]["filename"]) for d in executed] == [("4", "sum_00000.txt")]
    assert fake_pack.runs == runs_after_first

    forced = await submit(client, sum_prompt(), client_id="alice", force=True)
    await events_until_done(ws, forced["prompt_id"])
    assert len(fake_pack.runs) == 2 * len(runs_after_first)
    await ws.close()


async def test_execution_events_go_only_to_the_submitting_client_and_status_to_all(client):
    alice = await connect(client, "alice")
    bob = await connect(client, "bob")
    submitted = await submit(client, sum_prompt(), client_id="alice")
    await events_until_done(alice, submitted["prompt_id"])

    seen_by_bob = []
    while True:
        event = await next_event(bob)
        seen_by_bob.append(event)
        if event["type"] == "status" and event["data"]["status"]["exec_info"]["queue_remaining"] == 0:
            break
    assert {e["type"] for e in seen_by_bob} == {"status"}
    await alice.close()
    await bob.close()


async def test_a_failing_node_reports_execution_error_and_the_server_carries_on(client):
    ws = await connect(client, "alice")
    prompt = {
        "1": {"class_type": "TestNumber", "inputs": {"value": 5}},
        "2": {"class_type": "TestFail", "inputs": {"value": ["1", 0]}},
    }
    submitted = await submit(client, prompt, client_id="alice")
    events = of_prompt(await events_until_done(ws, submitted["prompt_id"]), submitted["prompt_id"])
    error = next(e["data"] for e in events if e["type"] == "execution_error")
    assert error["node_id"] == "2" and error["node_type"] == "TestFail"
    assert "value" in error["exception_message"] and "refused on purpose" in error["exception_message"]
    assert error["executed"] == ["1"]

    entry = (await (await client.get(f"/history/{submitted['prompt_id']}")).json())[submitted["prompt_id"]]
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert entry["status"]["messages"][-1][0] == "execution_error"

    after = await submit(client, sum_prompt(1, 1), client_id="alice")
    events = of_prompt(await events_until_done(ws, after["prompt_id"]), after["prompt_id"])
    assert "execution_success" in [e["type"] for e in events]
    await ws.close()


async def test_partial_execution_targets_run_only_the_requested_output(client, fake_pack):
    ws = await connect(client, "alice")
    prompt = sum_prompt() | {
        "5": {"class_type": "TestNumber", "inputs": {"value": 100}},
        "6": {"class_type": "TestSaveText", "inputs": {"value": ["5", 0], "filename_prefix": "other"}},
    }
    submitted = await submit(client, prompt, client_id="alice", partial_execution_targets=["6"])
    await events_until_done(ws, submitted["prompt_id"])
    assert sorted(node_id for _, node_id in fake_pack.runs) == ["5", "6"]
    entry = (await (await client.get(f"/history/{submitted['prompt_id']}")).json())[submitted["prompt_id"]]
    assert entry["prompt"][4] == ["6"]
    await ws.close()


async def _start_slow(client, ws, **kwargs):
    """Submit a slow prompt and return its id once its first progress event arrived (it is running)."""
    submitted = await submit(client, slow_prompt(steps=2000, step_seconds=0.005, **kwargs), client_id="alice")
    await wait_for_event(ws, "progress", prompt_id=submitted["prompt_id"])
    return submitted["prompt_id"]


async def test_queue_lists_deletes_and_clears_pending_prompts_while_one_runs(client):
    ws = await connect(client, "alice")
    running_id = await _start_slow(client, ws)
    pending_ids = [(await submit(client, sum_prompt(i, i), client_id="alice"))["prompt_id"] for i in range(3)]
    front = await submit(client, sum_prompt(9, 9), client_id="alice", front=True)

    queue = await (await client.get("/api/queue")).json()
    assert [entry[1] for entry in queue["queue_running"]] == [running_id]
    assert [entry[1] for entry in queue["queue_pending"]] == [front["prompt_id"], *pending_ids]
    assert queue["queue_pending"][1][2] == sum_prompt(0, 0)
    assert (await (await client.get("/prompt")).json()) == {"exec_info": {"queue_remaining": 5}}

    deleted = await (await client.post("/api/queue", json={"delete": [pending_ids[1]]})).json()
    assert deleted["deleted"] == [pending_ids[1]]
    queue = await (await client.get("/queue")).json()
    pending = [entry[1] for entry in queue["queue_pending"]]
    assert pending == [front["prompt_id"], pending_ids[0], pending_ids[2]]

    cleared = await (await client.post("/queue", json={"clear": True})).json()
    assert cleared["cleared"] == 3
    queue = await (await client.get("/queue")).json()
    assert queue["queue_pending"] == [] and len(queue["queue_running"]) == 1

    await client.post("/api/interrupt")
    await events_until_done(ws, running_id)
    history = await (await client.get("/history")).json()
    assert list(history) == [running_id]  # the deleted and cleared prompts never ran
    await ws.close()


async def test_interrupt_stops_the_running_prompt_and_the_next_prompt_still_runs(client, fake_pack):
    ws = await connect(client, "alice")
    running_id = (await submit(client, slow_prompt(steps=2000, step_seconds=0.005), client_id="alice"))["prompt_id"]
    first_progress = await wait_for_event(ws, "progress", prompt_id=running_id)

    refused = await (await client.post("/api/interrupt", json={"prompt_id": "not-running"})).json()
    assert refused == {"interrupted": None}
    accepted = await (await client.post("/api/interrupt", json={"prompt_id": running_id})).json()
    assert accepted == {"interrupted": running_id}

    events = of_prompt(await events_until_done(ws, running_id), running_id)
    interrupted = next(e["data"] for e in events if e["type"] == "execution_interrupted")
    assert interrupted["node_id"] == "1" and interrupted["node_type"] == "TestSlow"
    assert "execution_success" not in [e["type"] for e in events]
    # A loaded machine may deliver the interrupt before the node reports another step: count the first one too.
    progress = [first_progress, *(e for e in events if e["type"] == "progress")]
    assert progress[-1]["data"]["value"] < 2000
    entry = (await (await client.get(f"/history/{running_id}")).json())[running_id]
    assert entry["status"] == entry["status"] | {"status_str": "error", "completed": False}

    after = await submit(client, sum_prompt(), client_id="alice")
    events = of_prompt(await events_until_done(ws, after["prompt_id"]), after["prompt_id"])
    assert [e["type"] for e in events][-2:] == ["execution_success", "executing"]
    assert ("TestSaveText", "4") in fake_pack.runs
    await ws.close()


async def test_shutdown_interrupts_a_running_prompt_and_closes_websockets(client):
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(client.make_url("/ws?clientId=alice"))
        await next_event(ws)
        await _start_slow(client, ws)
        started = time.perf_counter()
        await client.server.close()
        assert time.perf_counter() - started < 5.0
        frames = []
        while not ws.closed:
            frames.append(await asyncio.wait_for(ws.receive(), 5.0))
        close = frames[-1]
        assert close.type == aiohttp.WSMsgType.CLOSE and close.data == aiohttp.WSCloseCode.GOING_AWAY
    assert "latentloom-worker" not in [thread.name for thread in threading.enumerate()]


async def test_a_socket_without_client_id_gets_a_generated_sid_and_sees_prompts_sent_without_one(client):
    ws = await client.ws_connect("/api/ws")
    greeting = await next_event(ws)
    assert greeting["type"] == "status"
    sid = greeting["data"]["sid"]
    assert len(sid) == 32 and int(sid, 16) >= 0
    assert greeting["data"]["status"] == {"exec_info": {"queue_remaining": 0}}

    # No client_id in the POST: like ComfyUI, its events go to every connected client.
    submitted = await submit(client, sum_prompt())
    events = of_prompt(await events_until_done(ws, submitted["prompt_id"]), submitted["prompt_id"])
    assert [e["type"] for e in events][-2:] == ["execution_success", "executing"]
    await ws.close()
