"""Helpers for talking to the test server: prompts, submission, websocket event collection."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

EVENT_TIMEOUT = 15.0


def sum_prompt(a: int = 2, b: int = 3, *, prefix: str = "sum") -> dict[str, Any]:
    """number a, number b → add → save: four nodes, one output."""
    return {
        "1": {"class_type": "TestNumber", "inputs": {"value": a}},
        "2": {"class_type": "TestNumber", "inputs": {"value": b}},
        "3": {"class_type": "TestAdd", "inputs": {"a": ["1", 0], "b": ["2", 0]}},
        "4": {"class_type": "TestSaveText", "inputs": {"value": ["3", 0], "filename_prefix": prefix}},
    }


def slow_prompt(value: int = 7, *, steps: int = 5, step_seconds: float = 0.01, prefix: str = "slow") -> dict:
    inputs = {"value": value, "steps": steps, "step_seconds": step_seconds}
    return {
        "1": {"class_type": "TestSlow", "inputs": inputs},
        "2": {"class_type": "TestSaveText", "inputs": {"value": ["1", 0], "filename_prefix": prefix}},
    }


async def submit(client: TestClient, prompt: dict[str, Any], **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/prompt", json={"prompt": prompt, **fields})
    body = await response.json()
    assert response.status == 200, body
    return body


async def next_event(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.receive(), EVENT_TIMEOUT)
    assert message.type == aiohttp.WSMsgType.TEXT, f"expected a JSON text frame, got {message.type}"
    return message.json()


async def events_until_done(ws: aiohttp.ClientWebSocketResponse, prompt_id: str) -> list[dict[str, Any]]:
    """Every event up to and including ``executing`` null for ``prompt_id`` (ComfyUI's "finished")."""
    events = []
    while True:
        event = await next_event(ws)
        events.append(event)
        data = event["data"]
        if event["type"] == "executing" and data["node"] is None and data["prompt_id"] == prompt_id:
            return events


async def wait_for_event(ws: aiohttp.ClientWebSocketResponse, event_type: str, **matching: Any) -> dict:
    while True:
        event = await next_event(ws)
        if event["type"] == event_type and all(event["data"].get(k) == v for k, v in matching.items()):
            return event


def of_prompt(events: list[dict[str, Any]], prompt_id: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] != "status" and e["data"].get("prompt_id") == prompt_id]


async def connect(client: TestClient, client_id: str) -> aiohttp.ClientWebSocketResponse:
    """Open /ws and consume the greeting status frame (checked to carry the client id)."""
    ws = await client.ws_connect(f"/ws?clientId={client_id}")
    greeting = await next_event(ws)
    assert greeting["type"] == "status" and greeting["data"]["sid"] == client_id
    return ws
