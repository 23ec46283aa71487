"""Third-party plugins: discovery, import with isolation, the per-plugin report, and its HTTP routes.

Plugins come from ``<base_dir>/custom_nodes/`` (a package folder with ``__init__.py`` or a single ``.py``
file) and from installed packages exposing an entry point in the ``latentloom.plugins`` group. Each is
imported on its own; one that fails is listed with its traceback and the others load. A plugin module
declares nodes through the ``register_nodes`` hook, through ComfyUI's NODE_CLASS_MAPPINGS, or both; it is
wrapped in a ``PluginPack`` that the pack loader registers like the first-party pack. Collision rule:
packs load in order (built-ins first, then plugins sorted by name) and the first to claim a node name
keeps it; a later claimant's node is listed as shadowed. See docs/plugins.md.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import logging
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from aiohttp import web

from latentloom.api import NodeRegistry, Services, hookimpl
from latentloom.api.comfy_compat import node_types_from_mappings

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "latentloom.plugins"
# Origins of plugins found at start-up (the others are the built-in pack and packs given in code).
PLUGIN_ORIGINS = frozenset({"custom_nodes", "entry_point"})
# custom_nodes modules are imported under this package name, so they never shadow other modules.
MODULE_PREFIX = "latentloom_custom_nodes"
# Top-level modules of ComfyUI itself: a plugin importing one of them cannot run here.
COMFY_INTERNALS = frozenset({
    "comfy", "comfy_extras", "comfy_execution", "comfy_api", "comfy_config", "folder_paths", "execution",
    "latent_preview", "node_helpers", "nodes", "server", "app", "utils", "model_management", "cuda_malloc",
})


@dataclass(frozen=True, kw_only=True)
class PluginSettings:
    """Which plugins to load: all (default), none (``--disable-plugins``) or those named (``--plugins``)."""

    enabled: bool = True
    allow: frozenset[str] | None = None
    custom_nodes_dir: Path | None = None  # None: <base_dir>/custom_nodes
    entry_points: bool = True

    def wants(self, name: str) -> bool:
        return self.enabled and (self.allow is None or name in self.allow)


@dataclass(frozen=True)
class PluginCandidate:
    """A plugin found on disk or among installed packages, not imported yet."""

    name: str
    origin: str  # "custom_nodes" or "entry_point"
    location: str  # the path, or "distribution version" for an installed package
    load: Callable[[], Any] = field(repr=False, compare=False)


@dataclass(frozen=True, kw_only=True)
class PluginRecord:
    """What one plugin did at start-up, as GET /api/plugins shows it."""

    name: str
    origin: str  # "builtin", "extra", "custom_nodes" or "entry_point"
    location: str = ""
    status: str = "loaded"  # "loaded", "failed" or "disabled"
    nodes: tuple[str, ...] = ()
    shadowed: tuple[dict[str, str], ...] = ()
    import_seconds: float = 0.0
    error: str | None = None
    traceback: str | None = None
    web_directory: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "origin": self.origin,
            "location": self.location,
            "status": self.status,
            "nodes": list(self.nodes),
            "shadowed": [dict(s) for s in self.shadowed],
            "import_seconds": round(self.import_seconds, 4),
            "error": self.error,
            "traceback": self.traceback,
            "web_extension": self.web_directory is not None,
        }

    def summary(self) -> str:
        """The one start-up log line for this plugin."""
        where = f" ({self.location})" if self.location else ""
        if self.status != "loaded":
            return f"plugin {self.name}{where}: {self.status}" + (f": {self.error}" if self.error else "")
        shadowed = f", {len(self.shadowed)} shadowed" if self.shadowed else ""
        web_note = ", web extension" if self.web_directory else ""
        # Built-in and in-code packs were imported with the server itself: no import time of their own.
        timing = f" in {self.import_seconds * 1000:.0f} ms" if self.origin in PLUGIN_ORIGINS else ""
        return f"plugin {self.name}{where}: loaded {len(self.nodes)} node(s){shadowed}{web_note}{timing}"


@dataclass(frozen=True)
class PluginReport:
    records: tuple[PluginRecord, ...] = ()

    def get(self, name: str) -> PluginRecord | None:
        return next((r for r in self.records if r.name == name), None)

    def web_directories(self) -> dict[str, Path]:
        return {r.name: r.web_directory for r in self.records if r.web_directory is not None}


class PluginImportError(Exception):
    """A plugin could not be imported; the message says why in the user's terms."""


class PluginPack:
    """A plugin module as a node pack: its own ``register_nodes`` hook and/or NODE_CLASS_MAPPINGS."""

    def __init__(self, name: str, module: Any) -> None:
        self.__name__ = name
        self.module = module

    @hookimpl
    def register_nodes(self, registry: NodeRegistry, services: Services) -> None:
        own_hook = getattr(self.module, "register_nodes", None)
        if callable(own_hook):
            arguments = {"registry": registry, "services": services}
            names = inspect.signature(own_hook).parameters
            own_hook(**{name: arguments[name] for name in names if name in arguments})
        mappings = getattr(self.module, "NODE_CLASS_MAPPINGS", None)
        if mappings:
            display_names = getattr(self.module, "NODE_DISPLAY_NAME_MAPPINGS", None)
            for node_type in node_types_from_mappings(mappings, display_names):
                registry.register(node_type, source=self.__name__)


# ---- discovery ---------------------------------------------------------------------------------------


def _custom_node_entries(folder: Path) -> list[tuple[str, Path]]:
    """(plugin name, file to import) for each plugin in ``folder``, by name."""
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith((".", "_")) or entry.name.endswith(".disabled"):
            continue
        if entry.is_dir() and (entry / "__init__.py").is_file():
            found.append((entry.name, entry / "__init__.py"))
        elif entry.is_file() and entry.suffix == ".py":
            found.append((entry.stem, entry))
    return found


def _module_name(plugin: str) -> str:
    return f"{MODULE_PREFIX}.{''.join(c if c.isalnum() else '_' for c in plugin)}"


def import_plugin_file(plugin: str, path: Path) -> ModuleType:
    """Import a custom_nodes plugin afresh (a package keeps working relative imports)."""
    name = _module_name(plugin)
    for stale in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[stale]
    search = [str(path.parent)] if path.name == "__init__.py" else None
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=search)
    if spec is None or spec.loader is None:
        raise PluginImportError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def discover_plugins(
    custom_nodes_dir: Path, *, entry_points: Iterable[importlib.metadata.EntryPoint] = ()
) -> list[PluginCandidate]:
    """Every plugin candidate, sorted by name (the order that decides who keeps a contested node name)."""
    candidates = [
        PluginCandidate(name, "custom_nodes", str(path.parent if path.name == "__init__.py" else path),
                        lambda name=name, path=path: import_plugin_file(name, path))
        for name, path in _custom_node_entries(custom_nodes_dir)
    ]
    for point in entry_points:
        dist = point.dist
        location = f"{dist.name} {dist.version}" if dist is not None else point.value
        candidates.append(PluginCandidate(point.name, "entry_point", location, point.load))
    return sorted(candidates, key=lambda c: c.name)


def installed_entry_points() -> Sequence[importlib.metadata.EntryPoint]:
    return tuple(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


# ---- import --------------------------------------------------------------------------------------------


def _import_failure(error: BaseException) -> str:
    """The message for a plugin that did not import; ComfyUI internals are named as such."""
    missing = getattr(error, "name", None) if isinstance(error, ImportError) else None
    if isinstance(error, AttributeError) and isinstance(error.obj, ModuleType):
        # `import nodes` / `import server` find LatentLoom's own packages of those names; what the plugin
        # then reads from them (nodes.MAX_RESOLUTION, server.PromptServer) is ComfyUI's.
        missing = f"{error.obj.__name__}.{error.name}"
    top = missing.split(".")[0] if missing else None
    if top in COMFY_INTERNALS:
        return (
            f"needs ComfyUI's internal module {missing!r}, which LatentLoom does not provide "
            f"({type(error).__name__}: {error})"
        )
    return f"import failed: {type(error).__name__}: {error}"


def _web_directory(module: Any) -> Path | None:
    declared = getattr(module, "WEB_DIRECTORY", None)
    module_file = getattr(module, "__file__", None)
    if not declared or not module_file:
        return None
    folder = (Path(module_file).parent / declared).resolve()
    return folder if folder.is_dir() else None


def import_plugins(
    candidates: Sequence[PluginCandidate], settings: PluginSettings
) -> tuple[list[PluginPack], list[PluginRecord]]:
    """Import each wanted candidate: packs for those that imported, records for every candidate."""
    packs: list[PluginPack] = []
    records: list[PluginRecord] = []
    seen: set[str] = set()
    for candidate in candidates:
        base = PluginRecord(name=candidate.name, origin=candidate.origin, location=candidate.location)
        if candidate.name in seen:
            records.append(replace(base, status="failed", error="another plugin already has this name"))
            continue
        seen.add(candidate.name)
        if not settings.wants(candidate.name):
            records.append(replace(base, status="disabled"))
            continue
        started = time.perf_counter()
        try:
            module = candidate.load()
        except BaseException as error:  # a plugin's import must never stop the server (SystemExit included)
            if isinstance(error, KeyboardInterrupt):
                raise
            trace = "".join(traceback.format_exception(error))
            records.append(replace(base, status="failed", error=_import_failure(error), traceback=trace))
            continue
        seconds = time.perf_counter() - started
        packs.append(PluginPack(candidate.name, module))
        records.append(
            replace(base, import_seconds=seconds, web_directory=_web_directory(module))
        )
    return packs, records


def with_registration(records: Sequence[PluginRecord], packs: Any) -> tuple[PluginRecord, ...]:
    """Records completed with what the pack loader did (``packs`` is server.packs.LoadedPacks)."""
    failures = {f.pack: f for f in packs.failures}
    completed = []
    for record in records:
        if record.status != "loaded":
            completed.append(record)
        elif record.name in failures:
            failure = failures[record.name]
            completed.append(replace(record, status="failed", error=failure.message, traceback=failure.traceback))
        else:
            shadowed = tuple(
                {"name": s.name, "kept_by": s.kept_by} for s in packs.shadowed if s.pack == record.name
            )
            completed.append(replace(record, nodes=packs.nodes_of(record.name), shadowed=shadowed))
    return tuple(completed)


def log_summary(report: PluginReport) -> None:
    for record in report.records:
        level = logging.INFO if record.status != "failed" else logging.ERROR
        log.log(level, "%s", record.summary())


# ---- HTTP ----------------------------------------------------------------------------------------------

PLUGINS = web.AppKey("plugins", PluginReport)


def extension_urls(report: PluginReport) -> list[str]:
    """ComfyUI's GET /extensions: the URL of every JS file in every plugin's web directory."""
    urls = []
    for name, folder in sorted(report.web_directories().items()):
        for script in sorted(folder.rglob("*.js")):
            urls.append(f"/extensions/{name}/{script.relative_to(folder).as_posix()}")
    return urls


async def get_extensions(request: web.Request) -> web.Response:
    return web.json_response(extension_urls(request.app[PLUGINS]))


async def get_plugins(request: web.Request) -> web.Response:
    return web.json_response([record.to_json() for record in request.app[PLUGINS].records])


async def get_extension_file(request: web.Request) -> web.StreamResponse:
    """A file of a plugin's web directory; paths that leave the directory are not found."""
    folder = request.app[PLUGINS].web_directories().get(request.match_info["plugin"])
    if folder is None:
        raise web.HTTPNotFound(text="no such plugin web extension")
    target = (folder / request.match_info["path"]).resolve()
    if not target.is_relative_to(folder) or not target.is_file():
        raise web.HTTPNotFound(text="no such file in the plugin's web directory")
    return web.FileResponse(target, headers={"Cache-Control": "no-cache"})


ROUTES = (
    web.get("/plugins", get_plugins),
    web.get("/extensions", get_extensions),
    web.get("/extensions/{plugin}/{path:.+}", get_extension_file),
)


def report_for(entries: Mapping[str, str], packs: Any, plugin_records: Sequence[PluginRecord]) -> PluginReport:
    """The whole report: the packs given in code (``entries``: pack name -> origin) first, then plugins."""
    given = [PluginRecord(name=name, origin=origin) for name, origin in entries.items()]
    return PluginReport(with_registration([*given, *plugin_records], packs))
