"""latentloom.workflow imports only latentloom.api, the standard library and PIL (never torch)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import latentloom.workflow as W

PACKAGE = Path(W.__file__).parent
ALLOWED_OURS = ("latentloom.api", "latentloom.workflow")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_package_imports_only_the_api_the_stdlib_and_pil():
    for path in sorted(PACKAGE.glob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if name == "latentloom" or name.startswith(ALLOWED_OURS) or top == "PIL":
                continue
            assert top in sys.stdlib_module_names, f"{path.name} imports {name}"
