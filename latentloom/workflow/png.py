"""PNG text chunks that carry a workflow, as ComfyUI writes them.

ComfyUI's SaveImage writes the API prompt as JSON in a tEXt chunk named "prompt", and each entry of
the request's ``extra_pnginfo`` (the editor's graph is "workflow") as JSON in a chunk of that name.
We write and read the same chunks, so images move between the two tools: for ComfyUI to open our
image's graph, the "workflow" chunk should hold ``workflow_to_comfy_ui(...)``, which we read back
to the same graph.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from latentloom.workflow.errors import PngMetadataMissing, WorkflowFormatError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WORKFLOW_CHUNK = "workflow"
PROMPT_CHUNK = "prompt"


@dataclass(frozen=True)
class PngMetadata:
    workflow: dict[str, Any] | None
    prompt: dict[str, Any] | None


def is_png(data: bytes) -> bool:
    return data.startswith(PNG_SIGNATURE)


def png_text_chunks(
    *,
    prompt: Mapping[str, Any] | None = None,
    workflow: Mapping[str, Any] | None = None,
    extra_pnginfo: Mapping[str, Any] | None = None,
) -> PngInfo:
    """The PngInfo to pass to ``Image.save(..., pnginfo=...)``: "prompt", "workflow", then each
    ``extra_pnginfo`` entry (ComfyUI's SaveImage writes the request's extra_pnginfo this way)."""
    info = PngInfo()
    chunks: dict[str, Any] = {}
    if prompt is not None:
        chunks[PROMPT_CHUNK] = prompt
    if workflow is not None:
        chunks[WORKFLOW_CHUNK] = workflow
    chunks.update(extra_pnginfo or {})
    for name, value in chunks.items():
        info.add_text(name, json.dumps(value))
    return info


def _png_bytes(source: bytes | str | Path) -> bytes:
    if isinstance(source, bytes | bytearray):
        return bytes(source)
    return Path(source).read_bytes()


def read_png_text(source: bytes | str | Path) -> dict[str, str]:
    """Every text chunk (tEXt, zTXt, iTXt) of a PNG, by keyword."""
    data = _png_bytes(source)
    if not is_png(data):
        raise WorkflowFormatError("not a PNG file (its first bytes are not the PNG signature)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            return dict(getattr(image, "text", {}) or {})
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise WorkflowFormatError(f"the PNG file cannot be read: {error}") from error


def _json_chunk(text: dict[str, str], name: str) -> dict[str, Any] | None:
    if name not in text:
        return None
    try:
        value = json.loads(text[name])
    except json.JSONDecodeError as error:
        raise WorkflowFormatError(f"the PNG's {name!r} text chunk is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        kind = type(value).__name__
        raise WorkflowFormatError(f"the PNG's {name!r} text chunk holds {kind}, not an object")
    return value


def read_png_metadata(source: bytes | str | Path) -> PngMetadata:
    """The workflow and prompt a PNG carries; PngMetadataMissing when it carries neither."""
    text = read_png_text(source)
    metadata = PngMetadata(workflow=_json_chunk(text, WORKFLOW_CHUNK), prompt=_json_chunk(text, PROMPT_CHUNK))
    if metadata.workflow is None and metadata.prompt is None:
        found = f" (its text chunks: {', '.join(sorted(text))})" if text else ""
        chunks = f'"{WORKFLOW_CHUNK}" or "{PROMPT_CHUNK}" text chunk'
        raise PngMetadataMissing(f"this PNG carries no workflow: it has no {chunks}{found}")
    return metadata
