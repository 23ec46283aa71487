"""PNG text chunks "workflow" and "prompt", as ComfyUI writes them: written, read, and missing."""

from __future__ import annotations

import io
import json
import zlib

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from workflow_fixtures import read_corpus

from latentloom.workflow import (
    PngMetadataMissing,
    WorkflowFormatError,
    load_workflow,
    png_text_chunks,
    read_png_metadata,
    workflow_to_comfy_api,
    workflow_to_comfy_ui,
    workflow_to_prompt,
)


def _png(info: PngInfo | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 10)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _text_chunks(data: bytes) -> dict[str, str]:
    """The tEXt chunks of a PNG, read by walking the chunk list (length, type, data, crc)."""
    chunks, offset = {}, 8
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            chunks[key.decode("latin-1")] = value.decode("latin-1")
        offset += 12 + length
    return chunks


def test_written_chunks_are_plain_text_chunks_named_like_comfyuis(schemas):
    workflow = load_workflow(read_corpus("comfyui/txt2img.json"), schemas)
    prompt, _ = workflow_to_prompt(workflow, schemas)
    graph = workflow_to_comfy_ui(workflow, schemas)
    data = _png(png_text_chunks(prompt=prompt, workflow=graph))
    chunks = _text_chunks(data)
    assert list(chunks) == ["prompt", "workflow"]
    assert json.loads(chunks["prompt"]) == prompt and json.loads(chunks["workflow"]) == graph


def test_a_png_round_trip_restores_the_graph(schemas):
    workflow = load_workflow(read_corpus("latentloom/portrait.json"), schemas)
    graph = workflow_to_comfy_ui(workflow, schemas)
    data = _png(png_text_chunks(prompt=workflow_to_prompt(workflow, schemas)[0], workflow=graph))
    assert load_workflow(data, schemas).to_json() == workflow.to_json()


def test_a_png_that_comfyui_saved_opens_here(schemas, tmp_path):
    # What ComfyUI's SaveImage does: add_text("prompt", json.dumps(prompt)), then each extra_pnginfo key.
    info = PngInfo()
    info.add_text("prompt", json.dumps(read_corpus("comfyui/api_txt2img.json")))
    info.add_text("workflow", json.dumps(read_corpus("comfyui/lora.json")))
    path = tmp_path / "ComfyUI_00001_.png"
    path.write_bytes(_png(info))
    metadata = read_png_metadata(path)
    assert metadata.prompt == read_corpus("comfyui/api_txt2img.json")
    workflow = load_workflow(path, schemas)
    assert workflow.to_json() == load_workflow(read_corpus("comfyui/lora.json"), schemas).to_json()


def test_a_png_with_only_a_prompt_opens_the_prompt(schemas):
    prompt = read_corpus("comfyui/api_txt2img.json")
    workflow = load_workflow(_png(png_text_chunks(prompt=prompt)), schemas)
    assert workflow_to_comfy_api(workflow, schemas)[0] == prompt


def test_compressed_text_chunks_are_read_too():
    info = PngInfo()
    info.add_text("workflow", json.dumps(read_corpus("comfyui/txt2img.json")), zip=True)
    data = _png(info)
    assert b"zTXt" in data
    assert read_png_metadata(data).workflow == read_corpus("comfyui/txt2img.json")


def test_a_png_without_a_workflow_says_so_and_lists_what_it_has():
    info = PngInfo()
    info.add_text("parameters", "a cat, Steps: 20, Sampler: Euler a")
    expected = r'no "workflow" or "prompt" text chunk \(its text chunks: parameters\)'
    with pytest.raises(PngMetadataMissing, match=expected):
        read_png_metadata(_png(info))
    with pytest.raises(PngMetadataMissing, match="this PNG carries no workflow"):
        load_workflow(_png())


def test_bad_chunks_and_non_pngs_are_refused_clearly():
    info = PngInfo()
    info.add_text("prompt", "{not json")
    with pytest.raises(WorkflowFormatError, match="'prompt' text chunk is not valid JSON"):
        read_png_metadata(_png(info))
    with pytest.raises(WorkflowFormatError, match="not a PNG file"):
        read_png_metadata(b"GIF89a....")
    truncated = _png(png_text_chunks(prompt={"1": {"class_type": "X", "inputs": {}}}))[:40]
    with pytest.raises(WorkflowFormatError):
        read_png_metadata(truncated + zlib.compress(b"junk"))
