"""Hostile requests against a real server: bad prompt bodies, fake or oversized images, foreign origins,
DNS rebinding, and the access token a server listening beyond loopback requires."""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import replace
from importlib.metadata import EntryPoint

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from PIL import Image
from server_helpers import connect, events_until_done, submit, sum_prompt

from server.auth import TOKEN_COOKIE, needs_token
from server.cli import _access_token
from server.composition import build_app
from server.plugins import ENTRY_POINT_GROUP, PluginSettings, discover_plugins, import_plugins
from server.routes_prompt import MAX_PROMPT_NODES
from server.safe_json import JsonBodyError, loads_strict


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _save(value) -> dict:
    return {"1": {"class_type": "TestSaveText", "inputs": {"value": value, "filename_prefix": "x"}}}


def _cycle() -> dict:
    return {
        "1": {"class_type": "TestAdd", "inputs": {"a": ["2", 0], "b": 1}},
        "2": {"class_type": "TestAdd", "inputs": {"a": ["1", 0], "b": 1}},
        "3": {"class_type": "TestSaveText", "inputs": {"value": ["2", 0], "filename_prefix": "x"}},
    }


def _latent(width: int, height: int) -> dict:
    return {"1": {"class_type": "EmptyLatentImage", "inputs": {"width": width, "height": height, "batch_size": 1}}}


_BAD_BODIES = {
    "malformed": b'{"prompt": {',
    "not an object": b"[1, 2]",
    "prompt is a list": json.dumps({"prompt": [1]}).encode(),
    "node is a string": json.dumps({"prompt": {"1": "TestNumber"}}).encode(),
    "unknown node": json.dumps({"prompt": {"1": {"class_type": "rm -rf /", "inputs": {}}}}).encode(),
    "cycle": json.dumps({"prompt": _cycle()}).encode(),
    "NaN": b'{"prompt": {"1": {"class_type": "TestSaveText", "inputs": {"value": NaN}}}}',
    "Infinity": b'{"prompt": {"1": {"class_type": "TestSaveText", "inputs": {"value": -Infinity}}}}',
    "nesting past the parser": ('{"prompt": ' + _nested(100_000) + "}").encode(),
    "nesting past the limit": json.dumps({"prompt": _save(json.loads(_nested(150)))}).encode(),
    "a giant string where a number belongs": json.dumps({"prompt": _save("x" * 400_000)}).encode(),
    "huge latent": json.dumps({"prompt": _latent(100_000, 100_000)}).encode(),
    "negative latent": json.dumps({"prompt": _latent(-512, 512)}).encode(),
    "too many nodes": json.dumps({"prompt": {str(i): {} for i in range(MAX_PROMPT_NODES + 1)}}).encode(),
    "non-UTF-8": b'{"prompt": "\xff\xfe"}',
}


@pytest.mark.parametrize("name", list(_BAD_BODIES))
@pytest.mark.asyncio
async def test_a_bad_prompt_body_gets_a_structured_400_and_the_server_keeps_working(client, name):
    response = await client.post("/api/prompt", data=_BAD_BODIES[name], headers={"Content-Type": "application/json"})
    body = await response.json()
    assert response.status == 400, body
    assert set(body["error"]) >= {"type", "message"} and "node_errors" in body
    ws = await connect(client, "after")
    prompt_id = (await submit(client, sum_prompt(1, 2), client_id="after"))["prompt_id"]
    assert (await events_until_done(ws, prompt_id))[-2]["type"] == "execution_success"
    await ws.close()


@pytest.mark.asyncio
async def test_a_giant_string_input_fails_as_a_clear_execution_error_and_the_next_prompt_runs(client):
    # Strings have no length limit of their own (prompts, plugin payloads): the body limit bounds them, and a
    # node that cannot use one says so. Here: a 400,000-character file name prefix.
    ws = await connect(client, "giant")
    prompt = {"1": {"class_type": "TestSaveText", "inputs": {"value": 7, "filename_prefix": "x" * 400_000}}}
    prompt_id = (await submit(client, prompt, client_id="giant"))["prompt_id"]
    events = await events_until_done(ws, prompt_id)
    error = next(e for e in events if e["type"] == "execution_error")["data"]
    assert error["node_id"] == "1" and error["node_type"] == "TestSaveText"
    assert "File name too long" in error["exception_message"]
    assert len(error["exception_message"]) < 2100  # the message quotes the name, cut to a readable length
    after = (await submit(client, sum_prompt(1, 2), client_id="giant"))["prompt_id"]
    assert (await events_until_done(ws, after))[-2]["type"] == "execution_success"
    await ws.close()


@pytest.mark.asyncio
async def test_a_body_over_the_size_limit_is_413(client, config):
    oversized = b'{"prompt": "' + b"x" * (config.max_body_bytes + 10) + b'"}'
    response = await client.post("/api/prompt", data=oversized)
    assert response.status == 413
    assert (await response.json())["error"]["type"] == "request_too_large"


def test_strict_json_refuses_what_python_json_lets_through():
    for text in ("NaN", "[Infinity]", '{"a": -Infinity}', _nested(101), _nested(50_000)):
        with pytest.raises(JsonBodyError):
            loads_strict(text)
    assert loads_strict(_nested(100)) == json.loads(_nested(100))
    assert loads_strict('{"x": [1.5e300, -0.0, "NaN"]}') == {"x": [1.5e300, -0.0, "NaN"]}


# -- uploads -------------------------------------------------------------------------------------------


def _image_bytes(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


async def _upload(client, data: bytes, filename: str, **fields: str):
    form = aiohttp.FormData()
    form.add_field("image", data, filename=filename, content_type="image/png")
    for key, value in fields.items():
        form.add_field(key, value)
    return await client.post("/api/upload/image", data=form)


@pytest.mark.asyncio
async def test_uploads_must_be_the_image_type_their_name_claims(client, config):
    png = _image_bytes(Image.new("RGB", (4, 4), "red"), "PNG")
    jpeg = _image_bytes(Image.new("RGB", (4, 4), "red"), "JPEG")
    cases = {
        "script.png": b"<script>alert(1)</script>",
        "photo.png": jpeg,
        "truncated.png": png[:40],
        "page.html": png,
    }
    for filename, data in cases.items():
        response = await _upload(client, data, filename)
        assert response.status == 415, filename
        assert (await response.json())["error"]["type"] == "not_an_image"
    assert list(config.folders().input.iterdir()) == []
    assert (await _upload(client, jpeg, "photo.jpg")).status == 200


@pytest.mark.asyncio
async def test_a_decompression_bomb_upload_is_refused(client, config):
    # 12000 x 12000 = 144 M pixels, past Pillow's default limit, yet only kilobytes on the wire.
    bomb = _image_bytes(Image.new("1", (12_000, 12_000)), "PNG")
    assert len(bomb) < 100_000
    response = await _upload(client, bomb, "bomb.png")
    assert response.status == 415
    assert "too large" in (await response.json())["error"]["message"]
    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS <= 200_000_000


@pytest.mark.asyncio
async def test_an_upload_into_a_symlink_leading_out_is_refused(client, config, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    config.folders().input.mkdir(parents=True, exist_ok=True)
    (config.folders().input / "escape").symlink_to(outside, target_is_directory=True)
    png = _image_bytes(Image.new("RGB", (2, 2)), "PNG")
    response = await _upload(client, png, "x.png", subfolder="escape")
    assert response.status == 403
    assert list(outside.iterdir()) == []


# -- network -------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_dns_rebinding_host_is_refused_by_a_loopback_server_even_for_reads(client):
    for method, path in (("GET", "/api/queue"), ("GET", "/api/history"), ("POST", "/api/interrupt")):
        headers = {"Host": "evil.example:8188", "Origin": "http://evil.example:8188"}
        response = await client.request(method, path, headers=headers)
        assert response.status == 403, path
        assert (await response.json())["error"]["type"] == "host_not_allowed"
    assert (await client.get("/api/queue", headers={"Host": "localhost:8188"})).status == 200


@pytest.mark.asyncio
async def test_a_foreign_origin_cannot_open_the_websocket_and_cors_is_off(client):
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", headers={"Origin": "http://evil.example"})
    assert refused.value.status == 403
    response = await client.get("/api/queue", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = await client.options("/api/prompt", headers={"Origin": "http://evil.example"})
    assert preflight.status == 403


@pytest.mark.asyncio
async def test_the_configured_cors_origin_may_call_the_api(aiohttp_client, config, fake_pack):
    app = build_app(replace(config, cors_origin="http://studio.example"), extra_packs=[fake_pack])
    client = await aiohttp_client(app)
    origin = {"Origin": "http://studio.example", "Access-Control-Request-Method": "POST"}
    preflight = await client.options("/api/prompt", headers=origin)
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://studio.example"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    posted = await client.post("/api/prompt", json={"prompt": sum_prompt()}, headers={"Origin": origin["Origin"]})
    assert posted.status == 200 and posted.headers["Access-Control-Allow-Origin"] == "http://studio.example"
    other = await client.post("/api/prompt", json={"prompt": sum_prompt()}, headers={"Origin": "http://x.example"})
    assert other.status == 403


def test_listening_beyond_loopback_without_a_token_does_not_start(config, fake_pack):
    for listen in ("0.0.0.0", "192.168.1.20", "::"):
        with pytest.raises(ValueError, match="access token"):
            build_app(replace(config, listen=listen), extra_packs=[fake_pack])
    assert not needs_token("127.0.0.1") and not needs_token("::1") and not needs_token("localhost")


def test_the_cli_generates_a_token_only_beyond_loopback():
    def token_for(listen: str, given: str | None = None) -> str | None:
        return _access_token(argparse.Namespace(listen=listen, auth_token=given))

    assert token_for("127.0.0.1") is None
    generated = token_for("0.0.0.0")
    assert generated and len(generated) >= 32 and generated != token_for("0.0.0.0")
    assert token_for("0.0.0.0", "chosen") == "chosen"


@pytest_asyncio.fixture
async def lan_client(aiohttp_client, config, fake_pack):
    app: web.Application = build_app(replace(config, listen="0.0.0.0", auth_token="s3cret"), extra_packs=[fake_pack])
    return await aiohttp_client(app)


@pytest.mark.asyncio
async def test_a_lan_server_needs_the_token_on_every_request_and_the_websocket(lan_client):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
        response = await lan_client.get("/api/queue", headers=headers)
        assert response.status == 401
        assert (await response.json())["error"]["type"] == "unauthorized"
    assert (await lan_client.post("/api/prompt", json={"prompt": sum_prompt()})).status == 401
    assert (await lan_client.get("/api/queue", headers={"Authorization": "Bearer s3cret"})).status == 200
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await lan_client.ws_connect("/ws?clientId=a")
    assert refused.value.status == 401
    ws = await lan_client.ws_connect("/ws?clientId=a&token=s3cret")
    assert (await ws.receive_json())["type"] == "status"
    await ws.close()


@pytest.mark.asyncio
async def test_opening_the_page_with_the_token_sets_a_cookie_the_browser_then_sends(lan_client):
    page = await lan_client.get("/?token=s3cret")
    assert page.status == 200
    cookie = page.cookies[TOKEN_COOKIE]
    assert cookie.value == "s3cret" and cookie["httponly"] and cookie["samesite"] == "Strict"
    # The client's cookie jar now carries it, like a browser's.
    assert (await lan_client.get("/api/queue")).status == 200


@pytest.mark.asyncio
async def test_a_lan_server_refuses_pages_of_other_origins_riding_on_the_token_cookie(lan_client):
    assert (await lan_client.get("/?token=s3cret")).status == 200  # the browser now holds the cookie
    host = {"Host": "192.168.1.20:8188"}
    # SameSite ignores ports: a page served from another port of the same host gets the cookie sent along.
    foreign = {**host, "Origin": "http://192.168.1.20:3000", "Content-Type": "text/plain"}
    response = await lan_client.post("/api/prompt", data=json.dumps({"prompt": sum_prompt()}), headers=foreign)
    assert response.status == 403 and (await response.json())["error"]["type"] == "cross_origin"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await lan_client.ws_connect("/ws?clientId=a", headers=foreign)
    assert refused.value.status == 403
    own = {**host, "Origin": "http://192.168.1.20:8188"}
    assert (await lan_client.post("/api/prompt", json={"prompt": sum_prompt()}, headers=own)).status == 200



def _plugin_that_leaves_a_mark(folder, name: str, mark) -> None:
    """A plugin whose import writes ``mark``: if the file exists, its code ran."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(
        f"from pathlib import Path\nPath({str(mark)!r}).write_text('imported')\nNODE_CLASS_MAPPINGS = {{}}\n",
        encoding="utf-8",
    )


def test_plugins_run_only_from_the_configured_folder_and_allow_list(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    custom_nodes = tmp_path / "base" / "custom_nodes"
    _plugin_that_leaves_a_mark(custom_nodes, "allowed", marks / "allowed")
    _plugin_that_leaves_a_mark(custom_nodes, "left_out", marks / "left_out")
    _plugin_that_leaves_a_mark(tmp_path / "base" / "elsewhere", "stray", marks / "stray")
    stray_entry_point = EntryPoint(name="stray_ep", value="os:getcwd", group=ENTRY_POINT_GROUP)
    candidates = discover_plugins(custom_nodes, entry_points=[stray_entry_point])
    assert [c.name for c in candidates] == ["allowed", "left_out", "stray_ep"]  # nothing from other folders

    _, records = import_plugins(candidates, PluginSettings(allow=frozenset({"allowed"})))
    assert {r.name: r.status for r in records} == {"allowed": "loaded", "left_out": "disabled", "stray_ep": "disabled"}
    assert sorted(p.name for p in marks.iterdir()) == ["allowed"]  # the others' code never ran

    _, records = import_plugins(discover_plugins(custom_nodes), PluginSettings(enabled=False))
    assert {r.status for r in records} == {"disabled"}
