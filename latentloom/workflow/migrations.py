"""Format versions of our workflow file and the migrations that move an old file forward.

Each migration takes the JSON of version N and returns the JSON of version N + 1; ``migrate`` chains
them, so a file of any older version reads as the current one. Version 1 is the first released format:
the table is empty until the format changes, and each change adds its step here with a test that loads
a file of the old version.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from latentloom.workflow.errors import WorkflowFormatError

FORMAT_NAME = "latentloom-workflow"
FORMAT_VERSION = 1

Migration = Callable[[dict[str, Any]], dict[str, Any]]

FORMAT_MIGRATIONS: Mapping[int, Migration] = MappingProxyType({})


def migrate(
    data: Mapping[str, Any],
    *,
    migrations: Mapping[int, Migration] = FORMAT_MIGRATIONS,
    target: int = FORMAT_VERSION,
) -> Mapping[str, Any]:
    """Return ``data`` moved forward to format version ``target`` (the input is never modified)."""
    if data.get("format") != FORMAT_NAME:
        raise WorkflowFormatError(f'not a LatentLoom workflow: "format" should be {FORMAT_NAME!r}')
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise WorkflowFormatError(f'workflow "version" must be a positive integer, got {version!r:.40}')
    if version > target:
        raise WorkflowFormatError(
            f"this workflow has format version {version}, newer than this LatentLoom reads "
            f"(up to {target}); update LatentLoom to open it"
        )
    if version == target:
        return data
    moved = copy.deepcopy(dict(data))
    while version < target:
        step = migrations.get(version)
        if step is None:
            raise WorkflowFormatError(f"workflow format version {version} has no migration to {version + 1}")
        moved = step(moved)
        version += 1
        moved["version"] = version
    return moved
