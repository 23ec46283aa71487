"""DESIGN.md's layer table, enforced: every import of every module (function-level ones included).

A lower layer never imports a higher one. Packages that do not exist yet are simply not walked; a new
package under latentloom/ fails until it has a rule here (and a row in DESIGN.md's table).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
WALKED = ("latentloom", "server", "nodes")


@dataclass(frozen=True)
class Layer:
    name: str  # the package, e.g. "latentloom.engine"
    may_import: tuple[str, ...]  # besides the standard library and the layer itself

    def rule(self) -> str:
        return f"{self.name} may import only the standard library, itself" + "".join(
            f", {name}" for name in self.may_import
        )


LAYERS = (
    Layer("latentloom.api", ("pluggy",)),
    Layer("latentloom.engine", ("latentloom.api",)),
    # torchsde: the SDE samplers' Brownian tree, the one k-diffusion and ComfyUI seed.
    Layer("latentloom.diffusion", ("torch", "numpy", "torchsde")),
    # regex: the CLIP tokenizer's pattern needs \p{L} / \p{N} classes that `re` lacks.
    Layer(
        "latentloom.runtime",
        ("latentloom.diffusion", "latentloom.api", "safetensors", "transformers", "torch", "numpy", "yaml", "regex"),
    ),
    # The workflow-file library: node schemas, and PIL for PNG metadata.
    Layer("latentloom.workflow", ("latentloom.api", "PIL")),
    Layer(
        "nodes",
        ("latentloom.api", "latentloom.runtime", "latentloom.diffusion", "latentloom.workflow", "torch", "numpy", "PIL"),
    ),
    # tqdm: the progress bar of `latentloom run`.
    Layer("server", ("latentloom.engine", "latentloom.api", "latentloom.workflow", "aiohttp", "tqdm")),
)
# Modules directly in latentloom/ (the package root holds the version): standard library only.
ROOT_PACKAGE = Layer("latentloom", ())
# The composition root: the one place that builds runtime objects and loads node packs (pluggy).
COMPOSITION_ROOTS = frozenset({"server/composition.py", "server/packs.py"})


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    """The dotted module name of a file, and whether it is a package's __init__."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def _layer_of_file(module: str) -> Layer | None:
    matches = [layer for layer in LAYERS if _within(module, layer.name)]
    if matches:
        return max(matches, key=lambda layer: len(layer.name))
    if module == "latentloom" or module.count(".") == 1 and module.startswith("latentloom."):
        return ROOT_PACKAGE
    return None


def _imported_names(tree: ast.AST, *, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute dotted name) for every import anywhere in the module; relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(part for part in [*anchor, base] if part)
            for alias in node.names:
                names.append((node.lineno, base if alias.name == "*" else f"{base}.{alias.name}"))
    return names


def _allowed(name: str, layer: Layer) -> bool:
    if name.split(".")[0] in sys.stdlib_module_names:
        return True
    if name == "latentloom" or name.startswith("latentloom.__"):
        return True  # the root package: only the version
    return any(_within(name, package) for package in (layer.name, *layer.may_import))


def layer_violations(root: Path) -> list[str]:
    """Every import under ``root``'s walked packages that its layer's rule forbids, one line each."""
    violations: list[str] = []
    for top in WALKED:
        for path in sorted((root / top).rglob("*.py")) if (root / top).is_dir() else []:
            relative = path.relative_to(root).as_posix()
            if relative in COMPOSITION_ROOTS:
                continue
            module, is_package = _module_name(path, root)
            layer = _layer_of_file(module)
            if layer is None:
                violations.append(f"{relative}: package {module} has no layer rule; add it to LAYERS and DESIGN.md")
                continue
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
            except SyntaxError as error:
                violations.append(f"{relative}: cannot be parsed ({error.msg}, line {error.lineno})")
                continue
            for line, name in _imported_names(tree, module=module, is_package=is_package):
                if not _allowed(name, layer):
                    violations.append(f"{relative}:{line}: imports {name}, but {layer.rule()}")
    return violations


def test_project_follows_the_layer_table():
    violations = layer_violations(REPO_ROOT)
    assert not violations, "layer rule broken:\n" + "\n".join(violations)


# ---- the checker itself, on small trees ---------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_missing_packages_are_fine(tmp_path):
    assert layer_violations(tmp_path) == []


def test_engine_importing_torch_names_file_import_and_rule(tmp_path):
    _tree(tmp_path, {"latentloom/engine/bad.py": "import json\nimport torch\n"})
    assert layer_violations(tmp_path) == [
        "latentloom/engine/bad.py:2: imports torch, but latentloom.engine may import only the standard "
        "library, itself, latentloom.api"
    ]


def test_function_level_and_from_imports_are_caught(tmp_path):
    source = "def f():\n    from latentloom.runtime import devices\n    return devices\n"
    _tree(tmp_path, {"latentloom/diffusion/unet.py": source})
    [violation] = layer_violations(tmp_path)
    assert violation.startswith("latentloom/diffusion/unet.py:2: imports latentloom.runtime.devices")


def test_relative_imports_are_resolved(tmp_path):
    _tree(
        tmp_path,
        {
            "latentloom/engine/__init__.py": "from . import cache\nfrom .cache import x\n",
            "latentloom/engine/cache.py": "from .. import api\nfrom ..runtime import devices\n",
        },
    )
    assert layer_violations(tmp_path) == [
        "latentloom/engine/cache.py:2: imports latentloom.runtime.devices, but latentloom.engine may import "
        "only the standard library, itself, latentloom.api"
    ]


def test_lower_layer_may_not_import_a_higher_one(tmp_path):
    _tree(tmp_path, {"latentloom/api/x.py": "from latentloom.engine import Executor\n", "nodes/n.py": "import server\n"})
    found = layer_violations(tmp_path)
    assert [v.split(":")[0] for v in found] == ["latentloom/api/x.py", "nodes/n.py"]


def test_only_the_composition_root_may_import_anything(tmp_path):
    _tree(
        tmp_path,
        {
            "server/composition.py": "import nodes\nfrom latentloom.runtime import devices\n",
            "server/routes.py": "import nodes\nfrom aiohttp import web\nfrom latentloom.engine import protocol\n",
        },
    )
    server_rule = next(layer for layer in LAYERS if layer.name == "server").rule()
    assert layer_violations(tmp_path) == [f"server/routes.py:1: imports nodes, but {server_rule}"]


def test_a_package_without_a_rule_fails(tmp_path):
    _tree(tmp_path, {"latentloom/newthing/mod.py": "import json\n"})
    assert layer_violations(tmp_path) == [
        "latentloom/newthing/mod.py: package latentloom.newthing.mod has no layer rule; add it to LAYERS and DESIGN.md"
    ]


@pytest.mark.parametrize("source", ["import latentloom\n", "from latentloom import __version__\n"])
def test_every_layer_may_read_the_root_package_version(tmp_path, source):
    _tree(tmp_path, {"latentloom/diffusion/v.py": source, "latentloom/__init__.py": "__version__ = '1'\n"})
    assert layer_violations(tmp_path) == []
