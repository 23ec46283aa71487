"""docs/plugins.md documents every hook of latentloom/api/hooks.py with its exact signature."""

from __future__ import annotations

import inspect
from pathlib import Path

from latentloom.api.hooks import PROJECT, LatentLoomHooks

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def _hook_signatures() -> list[str]:
    signatures = []
    for name, function in inspect.getmembers(LatentLoomHooks, inspect.isfunction):
        if hasattr(function, f"{PROJECT}_spec"):
            parameters = [p for p in inspect.signature(function).parameters.values() if p.name != "self"]
            signatures.append(f"{name}({', '.join(str(p) for p in parameters)})")
    return signatures


def test_every_hook_is_documented_with_its_exact_signature():
    text = DOCS.read_text(encoding="utf-8")
    signatures = _hook_signatures()
    assert signatures, "no hookspecs found: the test would prove nothing"
    for signature in signatures:
        assert f"`{signature}`" in text, f"docs/plugins.md does not document `{signature}`"


def test_the_documented_hooks_all_exist():
    text = DOCS.read_text(encoding="utf-8")
    documented = {line.strip("#` \n").split("(")[0] for line in text.splitlines() if line.startswith("### `")}
    assert documented == {signature.split("(")[0] for signature in _hook_signatures()}
