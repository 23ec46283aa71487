"""Discovery, entry points, the disable/allow-list settings and flags, and the start-up summary."""

from __future__ import annotations

import json
import logging
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from plugin_folder import write_plugins
from plugin_sources import HOOK_RAISES, UNREADABLE_CLASS, WANTS_COMFY_SERVER, WANTS_COMFY_SUBMODULE

from latentloom.api import Services
from server.cli import main
from server.composition import compose
from server.config import Config
from server.packs import load_packs
from server.plugins import (
    ENTRY_POINT_GROUP,
    PluginSettings,
    discover_plugins,
    import_plugins,
    report_for,
)

PLUGIN_NAMES = [
    "collide_a", "collide_b", "collide_builtin", "comfy_style", "example_plugin", "missing_dependency",
    "raises_at_import", "syntax_error", "wants_comfy",
]


def test_custom_nodes_folders_and_files_are_found_by_name_and_disabled_ones_skipped(tmp_path: Path):
    write_plugins(tmp_path / "custom_nodes")
    (tmp_path / "custom_nodes" / "not_a_package").mkdir()  # no __init__.py
    (tmp_path / "custom_nodes" / "notes.txt").write_text("not python", encoding="utf-8")
    found = discover_plugins(tmp_path / "custom_nodes")
    assert [c.name for c in found] == PLUGIN_NAMES
    assert {c.origin for c in found} == {"custom_nodes"}
    assert next(c for c in found if c.name == "example_plugin").location == str(tmp_path / "custom_nodes" / "example_plugin")
    assert discover_plugins(tmp_path / "absent") == []


def test_an_entry_point_plugin_registers_through_the_same_hook(tmp_path: Path):
    point = EntryPoint(name="ep_demo", value="entry_point_demo", group=ENTRY_POINT_GROUP)
    found = discover_plugins(tmp_path, entry_points=[point])
    assert [(c.name, c.origin, c.location) for c in found] == [("ep_demo", "entry_point", "entry_point_demo")]
    packs, records = import_plugins(found, PluginSettings())
    loaded = load_packs(packs, services=Services(), shadow_conflicts=True)
    assert records[0].status == "loaded"
    assert loaded.nodes_of("ep_demo") == ("EntryPointDouble",)
    assert loaded.registry.source_of("EntryPointDouble") == "ep_demo"  # the pack's name, whatever it wrote


def test_disable_and_allow_list_settings_decide_what_is_imported(tmp_path: Path):
    write_plugins(tmp_path / "custom_nodes")
    config = Config(base_dir=tmp_path)
    off = compose(config, plugins=PluginSettings(enabled=False, entry_points=False))
    assert {r.name: r.status for r in off.plugins.records} == {"nodes": "loaded"} | dict.fromkeys(PLUGIN_NAMES, "disabled")
    assert "ImageAdjust" not in off.registry
    only = compose(config, plugins=PluginSettings(allow=frozenset({"comfy_style"}), entry_points=False))
    statuses = {r.name: r.status for r in only.plugins.records}
    assert statuses["comfy_style"] == "loaded" and statuses["example_plugin"] == "disabled"
    assert statuses["syntax_error"] == "disabled"  # a plugin left out is never imported
    assert "SolidImage" in only.registry and "ImageAdjust" not in only.registry


def test_the_cli_flags_reach_the_plugin_loader(capsys):
    """`latentloom nodes` reads the checkout's custom_nodes/, which holds the example plugin."""
    def listed(*flags: str) -> dict[str, str]:
        assert main(["nodes", "--json", *flags]) == 0
        return {node["name"]: node["source"] for node in json.loads(capsys.readouterr().out)}

    assert listed()["ImageAdjust"] == "example_plugin"
    assert "ImageAdjust" not in listed("--disable-plugins")
    assert "ImageAdjust" not in listed("--plugins", "someone_else")
    assert listed("--plugins", "someone_else, example_plugin")["ContactSheet"] == "example_plugin"


def test_start_up_logs_one_summary_line_per_plugin(tmp_path: Path, caplog):
    write_plugins(tmp_path / "custom_nodes")
    with caplog.at_level(logging.INFO, logger="server.plugins"):
        composition = compose(Config(base_dir=tmp_path), plugins=PluginSettings(entry_points=False))
    lines = [r.getMessage() for r in caplog.records if r.name == "server.plugins"]
    assert len(lines) == len(composition.plugins.records) == len(PLUGIN_NAMES) + 1
    example = next(line for line in lines if line.startswith("plugin example_plugin"))
    assert "loaded 2 node(s)" in example and "web extension" in example
    assert any(line.startswith("plugin collide_b") and "1 shadowed" in line for line in lines)
    assert any(line.startswith("plugin syntax_error") and "failed" in line and "SyntaxError" in line for line in lines)


@pytest.mark.parametrize(
    ("source", "module"),
    [
        (WANTS_COMFY_SUBMODULE, "comfy"),
        (WANTS_COMFY_SERVER, "server"),
        # `import nodes` / `import server` find LatentLoom's packages; the attribute read from them is ComfyUI's.
        ("import nodes\nLIMIT = nodes.MAX_RESOLUTION\n", "nodes.MAX_RESOLUTION"),
        ("import server\nROUTES = server.PromptServer.instance.routes\n", "server.PromptServer"),
    ],
)
def test_comfyui_internal_imports_fail_with_the_module_named(tmp_path: Path, source: str, module: str):
    (tmp_path / "ported.py").write_text(source, encoding="utf-8")
    packs, (record,) = import_plugins(discover_plugins(tmp_path), PluginSettings())
    assert packs == [] and record.status == "failed"
    assert f"needs ComfyUI's internal module {module!r}" in record.error
    assert "Traceback" in record.traceback


def test_a_hook_that_raises_or_an_unreadable_class_fails_only_that_plugin(tmp_path: Path):
    (tmp_path / "hook_raises.py").write_text(HOOK_RAISES, encoding="utf-8")
    (tmp_path / "unreadable_class.py").write_text(UNREADABLE_CLASS, encoding="utf-8")
    (tmp_path / "fine.py").write_text("from entry_point_demo import register_nodes\n", encoding="utf-8")
    packs, records = import_plugins(discover_plugins(tmp_path), PluginSettings())
    assert [r.status for r in records] == ["loaded", "loaded", "loaded"]  # all imported
    loaded = load_packs(packs, services=Services(), shadow_conflicts=True)
    report = {r.name: r for r in report_for({}, loaded, records).records}
    assert report["fine"].status == "loaded" and report["fine"].nodes == ("EntryPointDouble",)
    assert report["hook_raises"].status == "failed" and "no nodes today" in report["hook_raises"].error
    assert "ValueError" in report["hook_raises"].traceback
    unreadable = report["unreadable_class"]
    assert unreadable.status == "failed" and "'Odd'" in unreadable.error and "FUNCTION" in unreadable.error
