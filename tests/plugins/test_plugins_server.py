"""Plugins of both styles through the HTTP API of a real server: register, validate, run, cache, report."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.plugins import MODULE_PREFIX

pytestmark = pytest.mark.asyncio

HISTORY_TIMEOUT = 30.0


async def submit(client: TestClient, prompt: dict[str, Any], **fields: Any) -> str:
    response = await client.post("/api/prompt", json={"prompt": prompt, **fields})
    body = await response.json()
    assert response.status == 200, body
    return body["prompt_id"]


async def finished(client: TestClient, prompt_id: str) -> dict[str, Any]:
    """The history entry of a prompt, once it has one."""
    deadline = asyncio.get_running_loop().time() + HISTORY_TIMEOUT
    while asyncio.get_running_loop().time() < deadline:
        body = await (await client.get(f"/api/history/{prompt_id}")).json()
        if prompt_id in body:
            return body[prompt_id]
        await asyncio.sleep(0.02)
    raise AssertionError(f"prompt {prompt_id} did not finish in {HISTORY_TIMEOUT} s")


def runs() -> list[tuple[str, Any]]:
    return sys.modules[f"{MODULE_PREFIX}.comfy_style"].RUNS


def sheet_prompt(*, columns: int = 2, brightness: float = 1.0) -> dict[str, Any]:
    """solid batch of 3 → contact sheet (ComfyUI-style class) → adjust (our schema) → stats (output)."""
    return {
        "1": {"class_type": "SolidImage", "inputs": {"batch": 3, "size": 4, "level": 0.5}},
        "2": {"class_type": "ContactSheet", "inputs": {"images": ["1", 0], "columns": columns, "gap": 1,
                                                        "background": 1.0}},
        "3": {"class_type": "ImageAdjust", "inputs": {"image": ["2", 0], "brightness": brightness,
                                                       "contrast": 1.0, "saturation": 1.0}},
        "4": {"class_type": "ImageStats", "inputs": {"image": ["3", 0], "label": "sheet", "mode": "max"}},
    }


async def test_both_plugin_styles_register_with_their_declared_schema(client: TestClient):
    info = await (await client.get("/api/object_info")).json()
    assert {"ImageAdjust", "ContactSheet", "SolidImage", "ImageStats", "Clock", "EvenOnly"} <= set(info)
    stats = info["ImageStats"]
    assert stats["python_module"] == "comfy_style" and stats["output_node"] is True
    assert stats["input"]["required"]["label"] == ["STRING", {"default": "", "multiline": True}]
    assert stats["input"]["optional"]["mode"] == [["mean", "max"], {"default": "mean"}]
    assert stats["input"]["hidden"] == {"unique_id": "UNIQUE_ID", "prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
    assert stats["output_name"] == ["mean"] and stats["description"] == "Shape and mean of an IMAGE."
    assert info["SolidImage"]["display_name"] == "Solid Image"
    assert info["ContactSheet"]["display_name"] == "Contact Sheet"
    assert info["ImageAdjust"]["python_module"] == "example_plugin"


async def test_a_chain_of_plugin_nodes_runs_and_passes_comfy_tensor_conventions(client: TestClient):
    prompt_id = await submit(client, sheet_prompt(), extra_data={"extra_pnginfo": {"workflow": {"v": 1}}})
    entry = await finished(client, prompt_id)
    assert entry["status"]["status_str"] == "success", entry["status"]
    (stats,) = entry["outputs"]["4"]["stats"]
    # 3 images of 4x4 in 2 columns with a 1 px gap: 2 rows → [1, 9, 9, 3]; the gap is the white background.
    assert stats["shape"] == [1, 9, 9, 3] and stats["value"] == 1.0
    assert stats["label"] == "sheet" and stats["unique_id"] == "4"
    assert stats["prompt_nodes"] == ["1", "2", "3", "4"]
    assert stats["pnginfo"] == {"workflow": {"v": 1}}


async def test_unchanged_inputs_are_served_from_the_cache_and_nan_is_changed_always_reruns(client: TestClient):
    first = await finished(client, await submit(client, sheet_prompt()))
    before = len(runs())
    second = await finished(client, await submit(client, sheet_prompt()))
    assert second["outputs"]["4"] == first["outputs"]["4"]
    assert len(runs()) == before  # nothing ran again
    changed = await finished(client, await submit(client, sheet_prompt(brightness=0.5)))
    assert changed["outputs"]["4"]["stats"][0]["value"] == 0.5
    assert [name for name, _ in runs()[before:]] == ["ImageStats"]  # only downstream of the change

    clock = {"1": {"class_type": "Clock", "inputs": {"seed": 1}}}
    ticks = [(await finished(client, await submit(client, clock)))["outputs"]["1"]["ticks"] for _ in range(2)]
    assert ticks[1][0] == ticks[0][0] + 1  # IS_CHANGED → NaN: ran both times


async def test_widget_ranges_combos_and_validate_inputs_are_checked_before_running(client: TestClient):
    bad = sheet_prompt(columns=0)
    bad["4"]["inputs"]["mode"] = "median"
    bad["3"]["inputs"]["brightness"] = 9.0  # ImageAdjust, declared with our schema: max 4
    response = await client.post("/api/prompt", json={"prompt": bad})
    body = await response.json()
    assert response.status == 400
    kinds = {e["type"] for node in body["node_errors"].values() for e in node["errors"]}
    assert {"value_smaller_than_min", "value_not_in_list", "value_bigger_than_max"} <= kinds
    assert set(body["node_errors"]) == {"2", "3", "4"}
    response = await client.post("/api/prompt", json={"prompt": {"1": {"class_type": "EvenOnly",
                                                                       "inputs": {"number": 3}}}})
    body = await response.json()
    assert response.status == 400
    (error,) = body["node_errors"]["1"]["errors"]
    assert error["type"] == "custom_validation_failed" and "3 is odd" in str(error), error
    ok = await finished(client, await submit(client, {"1": {"class_type": "EvenOnly", "inputs": {"number": 4}}}))
    assert ok["outputs"]["1"] == {"numbers": [4]}


async def test_broken_plugins_are_listed_with_their_tracebacks_and_the_rest_load(client: TestClient):
    records = {r["name"]: r for r in await (await client.get("/api/plugins")).json()}
    assert "ignored" not in records and "ignored.py" not in records  # *.disabled is skipped
    for name in ("syntax_error", "missing_dependency", "raises_at_import", "wants_comfy"):
        assert records[name]["status"] == "failed" and records[name]["nodes"] == []
        assert "Traceback" in records[name]["traceback"]
    assert "SyntaxError" in records["syntax_error"]["error"]
    assert "surely_not_an_installed_module_xyz" in records["missing_dependency"]["error"]
    assert "this plugin refuses to start" in records["raises_at_import"]["error"]
    assert "ComfyUI's internal module 'folder_paths'" in records["wants_comfy"]["error"]
    example = records["example_plugin"]
    assert example["status"] == "loaded" and example["nodes"] == ["ContactSheet", "ImageAdjust"]
    assert example["origin"] == "custom_nodes" and example["location"].endswith("example_plugin")
    assert example["web_extension"] is True and example["import_seconds"] > 0
    assert records["nodes"]["origin"] == "builtin" and "SaveImage" in records["nodes"]["nodes"]


async def test_collisions_keep_the_built_in_then_the_first_plugin_by_name_and_list_the_loser(client: TestClient):
    records = {r["name"]: r for r in await (await client.get("/api/plugins")).json()}
    assert records["collide_a"]["nodes"] == ["OnlyA", "SharedName"]
    assert records["collide_b"]["nodes"] == ["OnlyB"]
    assert records["collide_b"]["shadowed"] == [{"name": "SharedName", "kept_by": "collide_a"}]
    assert records["collide_builtin"]["nodes"] == ["OwnNode"]
    assert records["collide_builtin"]["shadowed"] == [{"name": "SaveImage", "kept_by": "nodes"}]
    info = await (await client.get("/api/object_info/SaveImage")).json()
    assert info["SaveImage"]["python_module"] == "nodes"
    entry = await finished(client, await submit(client, {"1": {"class_type": "SharedName", "inputs": {}}}))
    assert entry["outputs"]["1"] == {"value": [1]}  # collide_a's node answered


async def test_web_extensions_are_listed_and_served_from_the_plugin_folder(client: TestClient):
    urls = await (await client.get("/api/extensions")).json()
    assert urls == ["/extensions/example_plugin/contact_sheet.js"]
    script = await client.get(urls[0])
    assert script.status == 200 and "registerExtension" in await script.text()
    assert script.content_type in ("application/javascript", "text/javascript")
    for escape in ("/extensions/example_plugin/..%2F__init__.py", "/extensions/comfy_style/x.js"):
        assert (await client.get(escape)).status == 404
