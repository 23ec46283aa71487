"""A ComfyUI-style switch with lazy inputs, through the HTTP API of a real server: only the chosen branch runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from test_plugins_server import finished, submit

from server.config import Config
from server.plugins import MODULE_PREFIX

pytestmark = pytest.mark.asyncio

# ComfyUI's lazy-input conventions: {"lazy": True} in INPUT_TYPES and a check_lazy_status method.
LAZY_SWITCH = '''
RUNS = []  # (class, unique_id) of every execution
LAZY_CALLS = []  # the keyword arguments of every check_lazy_status call


class Number:
    CATEGORY = "test/lazy"
    RETURN_TYPES = ("NUMBER",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0})}, "hidden": {"unique_id": "UNIQUE_ID"}}

    def make(self, value, unique_id):
        RUNS.append(("Number", unique_id))
        return (value,)


class LazySwitch:
    CATEGORY = "test/lazy"
    RETURN_TYPES = ("NUMBER",)
    FUNCTION = "pick"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "select": ("BOOLEAN", {"default": True}),
            "on_true": ("NUMBER", {"lazy": True}),
            "on_false": ("NUMBER", {"lazy": True}),
        }}

    def check_lazy_status(self, select, on_true=None, on_false=None):
        LAZY_CALLS.append({"select": select, "on_true": on_true, "on_false": on_false})
        wanted = "on_true" if select else "on_false"
        return [wanted] if locals()[wanted] is None else []

    def pick(self, select, on_true=None, on_false=None):
        RUNS.append(("LazySwitch", None))
        return (on_true if select else on_false,)


class ShowNumber:
    CATEGORY = "test/lazy"
    RETURN_TYPES = ()
    FUNCTION = "show"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"number": ("NUMBER",)}}

    def show(self, number):
        RUNS.append(("ShowNumber", None))
        return {"ui": {"numbers": [number]}}


NODE_CLASS_MAPPINGS = {"Number": Number, "LazySwitch": LazySwitch, "ShowNumber": ShowNumber}
'''


@pytest.fixture
def custom_nodes(config: Config) -> Path:
    """Only the lazy switch plugin (replaces the shared folder of the package conftest)."""
    folder = Path(config.base_dir) / "custom_nodes"
    folder.mkdir(parents=True)
    (folder / "lazy_switch.py").write_text(LAZY_SWITCH, encoding="utf-8")
    return folder


def plugin() -> Any:
    return sys.modules[f"{MODULE_PREFIX}.lazy_switch"]


def switch_prompt(*, select: bool) -> dict[str, Any]:
    return {
        "1": {"class_type": "Number", "inputs": {"value": 3}},
        "2": {"class_type": "Number", "inputs": {"value": 30}},
        "3": {"class_type": "LazySwitch", "inputs": {"select": select, "on_true": ["1", 0], "on_false": ["2", 0]}},
        "4": {"class_type": "ShowNumber", "inputs": {"number": ["3", 0]}},
    }


def messages(entry: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [data for name, data in entry["status"]["messages"] if name == kind]


async def test_lazy_option_is_reported_in_object_info(client: TestClient):
    info = await (await client.get("/api/object_info/LazySwitch")).json()
    assert info["LazySwitch"]["input"]["required"]["on_true"] == ["NUMBER", {"lazy": True}]


async def test_switch_runs_only_the_chosen_branch(client: TestClient):
    entry = await finished(client, await submit(client, switch_prompt(select=False)))
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert entry["outputs"]["4"] == {"numbers": [30]}
    assert plugin().RUNS == [("Number", "2"), ("LazySwitch", None), ("ShowNumber", None)]
    assert ("Number", "1") not in plugin().RUNS  # the unchosen branch never ran
    assert plugin().LAZY_CALLS == [
        {"select": False, "on_true": None, "on_false": None},
        {"select": False, "on_true": None, "on_false": 30},
    ]


async def test_rerun_is_cached_and_flipping_the_switch_runs_the_other_branch(client: TestClient):
    await finished(client, await submit(client, switch_prompt(select=True)))
    assert plugin().RUNS == [("Number", "1"), ("LazySwitch", None), ("ShowNumber", None)]
    again = await finished(client, await submit(client, switch_prompt(select=True)))
    assert again["outputs"]["4"] == {"numbers": [3]}
    assert len(plugin().RUNS) == 3  # nothing ran again
    assert set(messages(again, "execution_cached")[0]["nodes"]) >= {"3", "4"}
    flipped = await finished(client, await submit(client, switch_prompt(select=False)))
    assert flipped["outputs"]["4"] == {"numbers": [30]}
    assert plugin().RUNS[3:] == [("Number", "2"), ("LazySwitch", None), ("ShowNumber", None)]
