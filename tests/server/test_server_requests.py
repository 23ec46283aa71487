"""Request handling: validation errors, malformed bodies, both route prefixes, info routes, the web root."""

from __future__ import annotations

import pytest
from server_helpers import sum_prompt

pytestmark = pytest.mark.asyncio


async def _still_answers(client) -> None:
    response = await client.get("/api/prompt")
    assert response.status == 200
    assert "exec_info" in await response.json()


async def test_an_invalid_graph_is_refused_with_node_errors_naming_node_and_input(client):
    prompt = sum_prompt()
    prompt["1"]["inputs"]["value"] = "not a number"
    prompt["3"]["inputs"]["b"] = ["99", 0]
    response = await client.post("/api/prompt", json={"prompt": prompt})
    assert response.status == 400
    body = await response.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert set(body["node_errors"]) == {"1", "3"}
    assert body["node_errors"]["1"]["class_type"] == "TestNumber"
    assert body["node_errors"]["1"]["errors"][0]["extra_info"]["input_name"] == "value"
    assert body["node_errors"]["3"]["errors"][0]["extra_info"]["input_name"] == "b"
    assert body["node_errors"]["3"]["dependent_outputs"] == ["4"]
    assert (await (await client.get("/queue")).json())["queue_pending"] == []


async def test_an_unknown_node_type_is_refused_as_missing_node_type(client):
    prompt = {"1": {"class_type": "NoSuchNode", "inputs": {}}}
    response = await client.post("/prompt", json={"prompt": prompt})
    body = await response.json()
    assert response.status == 400
    assert body["error"]["type"] == "missing_node_type"
    assert body["error"]["extra_info"] == {"node_id": "1", "class_type": "NoSuchNode"}


@pytest.mark.parametrize(
    ("raw", "error_type"),
    [
        (b"{not json", "invalid_json"),
        (b"", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b'{"client_id": "x"}', "no_prompt"),
        (b'{"prompt": [1]}', "no_prompt"),
        (b'{"prompt": {}, "extra_data": 5}', "invalid_request"),
        (b'{"prompt": {}, "number": "first"}', "invalid_request"),
        (b'{"prompt": {}, "front": "yes"}', "invalid_request"),
        (b'{"prompt": {}, "partial_execution_targets": "4"}', "invalid_request"),
        (b'{"prompt": {}, "force": 1}', "invalid_request"),
    ],
)
async def test_malformed_prompt_bodies_get_a_structured_400_and_the_server_goes_on(client, raw, error_type):
    response = await client.post("/api/prompt", data=raw, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["error"]["type"] == error_type
    assert body["error"]["message"]
    assert body["node_errors"] == {}
    await _still_answers(client)


async def test_a_prompt_posted_without_a_json_content_type_is_still_read_as_json(client):
    import json

    response = await client.post(
        "/prompt", data=json.dumps({"prompt": sum_prompt()}), headers={"Content-Type": "text/plain"}
    )
    assert response.status == 200
    assert set(await response.json()) == {"prompt_id", "number", "node_errors"}
    numbered = await client.post("/prompt", json={"prompt": sum_prompt(), "number": 7.5})
    assert (await numbered.json())["number"] == 7.5


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/queue", {"delete": "abc"}),
        ("/api/queue", {"delete": [1, 2]}),
        ("/api/queue", {"clear": "yes"}),
        ("/api/history", {"delete": {"id": 1}}),
        ("/api/interrupt", {"prompt_id": 5}),
    ],
)
async def test_wrong_shapes_on_queue_history_and_interrupt_are_400_json(client, path, body):
    response = await client.post(path, json=body)
    assert response.status == 400
    assert (await response.json())["error"]["type"] == "invalid_request"
    await _still_answers(client)


async def test_unknown_routes_wrong_methods_and_oversized_bodies_answer_json(client):
    missing = await client.get("/api/no/such/route")
    assert missing.status == 404 and (await missing.json())["error"]["type"] == "not_found"
    wrong_method = await client.delete("/api/prompt")
    assert wrong_method.status == 405 and (await wrong_method.json())["error"]["type"] == "method_not_allowed"
    # The test config allows 1 MB bodies.
    too_big = await client.post("/api/prompt", data=b"{" + b" " * (2 * 1024 * 1024) + b"}")
    too_big_body = await too_big.json()
    assert too_big.status == 413 and too_big_body["error"]["type"] == "request_too_large"
    assert "1048576" in too_big_body["error"]["details"]
    plain_get_on_ws = await client.get("/ws")
    assert plain_get_on_ws.status == 400 and (await plain_get_on_ws.json())["error"]["type"] == "bad_request"
    bad_count = await client.get("/api/history", params={"max_items": "many"})
    assert bad_count.status == 400 and "max_items" in (await bad_count.json())["error"]["message"]
    await _still_answers(client)


@pytest.mark.parametrize("prefix", ["/api", ""])
async def test_every_route_answers_with_and_without_the_api_prefix(client, prefix):
    for path in ("/prompt", "/queue", "/history", "/object_info", "/object_info/TestAdd", "/system_stats"):
        response = await client.get(prefix + path)
        assert response.status == 200, path
        assert response.content_type == "application/json"
    posted = await client.post(prefix + "/prompt", json={"prompt": sum_prompt()})
    assert posted.status == 200


async def test_object_info_has_comfyui_shape_for_every_registered_node(client):
    info = await (await client.get("/api/object_info")).json()
    assert {"TestNumber", "TestAdd", "TestSlow", "TestSaveText", "TestFail"} <= set(info)
    add = info["TestAdd"]
    assert add["input"]["required"]["a"] == ["INT", {"default": 0, "step": 1}]
    assert add["input_order"]["required"] == ["a", "b"]
    assert add["output"] == ["INT"] and add["output_name"] == ["sum"] and add["output_is_list"] == [False]
    assert add["python_module"] == "fake_pack" and add["category"] == "testing"
    assert info["TestSaveText"]["output_node"] is True

    single = await (await client.get("/object_info/TestAdd")).json()
    assert single == {"TestAdd": add}
    assert await (await client.get("/object_info/NoSuchNode")).json() == {}


async def test_system_stats_has_comfyui_keys_with_real_memory_numbers(client):
    stats = await (await client.get("/api/system_stats")).json()
    system = stats["system"]
    assert {"os", "python_version", "embedded_python", "latentloom_version", "pytorch_version"} <= set(system)
    assert {"ram_total", "ram_free", "argv"} <= set(system)
    assert 0 < system["ram_free"] <= system["ram_total"]
    assert system["embedded_python"] is False
    device = stats["devices"][0]
    assert set(device) == {
        "name", "type", "index", "vram_total", "vram_free", "torch_vram_total", "torch_vram_free"
    }
    assert device["vram_total"] > 0


async def test_the_root_serves_a_not_built_page_until_the_canvas_exists(client, config):
    page = await client.get("/")
    assert page.status == 200 and page.content_type == "text/html"
    assert "canvas is not built" in await page.text()


async def test_a_cross_site_request_to_a_loopback_server_is_refused(client):
    headers = {"Origin": "http://evil.example", "Host": "127.0.0.1:8188"}
    refused = await client.post("/api/prompt", json={"prompt": sum_prompt()}, headers=headers)
    assert refused.status == 403 and (await refused.json())["error"]["type"] == "cross_origin"
    same = {"Origin": "http://127.0.0.1:8188", "Host": "127.0.0.1:8188"}
    accepted = await client.post("/api/prompt", json={"prompt": sum_prompt()}, headers=same)
    assert accepted.status == 200
