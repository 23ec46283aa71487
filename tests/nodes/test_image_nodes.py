"""LoadImage, SaveImage, PreviewImage, ImageScale and ImagePadForOutpaint."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from nodes_harness import NodeBench
from PIL import Image

from latentloom.api import NodeInputError
from latentloom.workflow.png import read_png_metadata
from nodes import image_files


@pytest.fixture
def fresh(tmp_path: Path) -> NodeBench:
    """Nodes over an empty base dir of their own (input/output/temp start empty)."""
    return NodeBench.over(tmp_path)


def write_rgba(path: Path, *, seed: int = 0, size: tuple[int, int] = (6, 4)) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 4), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, "RGBA").save(path)
    return pixels


def test_load_image_gives_rgb_in_0_1_and_mask_one_minus_alpha(fresh):
    pixels = write_rgba(fresh.folders.input_dir / "cat.png")
    image, mask = fresh.run("LoadImage", image="cat.png")
    assert image.shape == (1, 4, 6, 3) and mask.shape == (1, 4, 6)
    torch.testing.assert_close(image[0], torch.from_numpy(pixels[..., :3].astype(np.float32) / 255))
    torch.testing.assert_close(mask[0], 1 - torch.from_numpy(pixels[..., 3].astype(np.float32) / 255))


def test_load_image_without_alpha_has_an_empty_mask(fresh):
    fresh.folders.input_dir.mkdir(parents=True)
    Image.new("RGB", (5, 3), (255, 0, 0)).save(fresh.folders.input_dir / "red.jpg")
    image, mask = fresh.run("LoadImage", image="red.jpg")
    assert image.shape == (1, 3, 5, 3) and not mask.any() and mask.shape == (1, 3, 5)


def test_load_image_lists_input_images_and_reruns_when_the_file_changes(fresh):
    write_rgba(fresh.folders.input_dir / "a.png", seed=1)
    write_rgba(fresh.folders.input_dir / "sub" / "b.png", seed=2)
    (fresh.folders.input_dir / "notes.txt").write_text("not an image")
    node = fresh.node("LoadImage")
    choices = fresh.registry.object_info("LoadImage")["LoadImage"]["input"]["required"]["image"]
    assert choices == [["a.png", "sub/b.png"], {"image_upload": True}]
    before = node.fingerprint(image="a.png")
    write_rgba(fresh.folders.input_dir / "a.png", seed=3)
    assert node.fingerprint(image="a.png") != before
    assert node.fingerprint(image="a.png") == image_files.file_digest(fresh.folders.input_dir / "a.png")


def test_load_image_reads_annotated_names_from_other_folders_and_refuses_missing_or_escaping_ones(fresh):
    write_rgba(fresh.folders.output_dir / "made.png")
    node = fresh.node("LoadImage")
    assert node.validate(image="made.png [output]") == []
    assert fresh.run("LoadImage", image="made.png [output]")[0].shape == (1, 4, 6, 3)
    assert "invalid image file" in node.validate(image="missing.png")[0]
    with pytest.raises(NodeInputError, match="input 'image'"):
        fresh.run("LoadImage", image="../outside.png")


def saved_image() -> torch.Tensor:
    return torch.rand((2, 8, 12, 3), generator=torch.Generator().manual_seed(5))


def test_save_image_counts_up_embeds_prompt_and_workflow_and_reports_the_files(fresh):
    prompt = {"9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "cat"}}}
    workflow = {"nodes": [{"id": 9, "type": "SaveImage"}], "links": []}
    images = saved_image()
    result = fresh.run_result("SaveImage", images=images, filename_prefix="cat", prompt=prompt,
                              extra_pnginfo={"workflow": workflow})  # fmt: skip
    assert result.outputs == ()
    assert result.ui == {"images": [
        {"filename": "cat_00001_.png", "subfolder": "", "type": "output"},
        {"filename": "cat_00002_.png", "subfolder": "", "type": "output"},
    ]}  # fmt: skip
    first = fresh.folders.output_dir / "cat_00001_.png"
    metadata = read_png_metadata(first)
    assert metadata.prompt == prompt and metadata.workflow == workflow
    with Image.open(first) as picture:
        assert json.loads(picture.text["workflow"]) == workflow
        expected = np.clip(255.0 * images[0].numpy(), 0, 255).astype(np.uint8)
        assert np.array_equal(np.asarray(picture), expected)
    assert sorted(p.name for p in fresh.folders.output_dir.iterdir()) == ["cat_00001_.png", "cat_00002_.png"]


def test_save_image_never_overwrites(fresh, monkeypatch):
    output = fresh.folders.output_dir
    output.mkdir(parents=True)
    (output / "cat_00007_.png").write_bytes(b"someone else's")
    result = fresh.run_result("SaveImage", images=saved_image()[:1], filename_prefix="cat")
    assert result.ui["images"][0]["filename"] == "cat_00008_.png"
    # Another writer took the counter between the scan and the write: the next free one is used.
    monkeypatch.setattr(image_files, "next_counter", lambda folder, stem: 7)
    result = fresh.run_result("SaveImage", images=saved_image()[:1], filename_prefix="cat")
    assert result.ui["images"][0]["filename"] == "cat_00009_.png"
    assert (output / "cat_00007_.png").read_bytes() == b"someone else's"
    assert sorted(p.name for p in output.iterdir()) == ["cat_00007_.png", "cat_00008_.png", "cat_00009_.png"]


def test_save_image_falls_back_when_hard_links_are_not_supported(fresh, monkeypatch):
    def no_links(source, target):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    fresh.folders.output_dir.mkdir(parents=True)
    (fresh.folders.output_dir / "x_00001_.png").write_bytes(b"taken")
    result = fresh.run_result("SaveImage", images=saved_image()[:1], filename_prefix="x")
    assert result.ui["images"][0]["filename"] == "x_00002_.png"
    with Image.open(fresh.folders.output_dir / "x_00002_.png") as picture:
        assert picture.size == (12, 8)
    assert sorted(p.name for p in fresh.folders.output_dir.iterdir()) == ["x_00001_.png", "x_00002_.png"]


def test_save_image_prefix_may_name_a_subfolder_and_size_but_not_leave_output(fresh):
    result = fresh.run_result("SaveImage", images=saved_image()[:1], filename_prefix="shots/cat_%width%x%height%")
    assert result.ui["images"] == [{"filename": "cat_12x8_00001_.png", "subfolder": "shots", "type": "output"}]
    assert (fresh.folders.output_dir / "shots" / "cat_12x8_00001_.png").is_file()
    for bad in ("../escape", "/abs/path", ""):
        with pytest.raises(NodeInputError, match="input 'filename_prefix'"):
            fresh.run_result("SaveImage", images=saved_image()[:1], filename_prefix=bad)


def test_preview_image_writes_into_temp(fresh):
    result = fresh.run_result("PreviewImage", images=saved_image()[:1], prompt={"1": {}}, extra_pnginfo=None)
    [entry] = result.ui["images"]
    assert entry["type"] == "temp" and entry["subfolder"] == ""
    assert (fresh.folders.temp_dir / entry["filename"]).is_file()
    assert not fresh.folders.output_dir.exists()


def test_image_scale_is_interpolate_on_channels_first(bench):
    image = torch.rand(1, 10, 20, 3)
    (out,) = bench.run("ImageScale", image=image, upscale_method="bicubic", width=30, height=0, crop="disabled")
    assert out.shape == (1, 15, 30, 3)
    expected = F.interpolate(image.movedim(-1, 1), size=(15, 30), mode="bicubic").movedim(1, -1)
    assert torch.equal(out, expected)


def reference_outpaint_mask(height, width, *, top, bottom, left, right, feathering):
    """ComfyUI's per-pixel definition, written as a loop."""
    mask = torch.zeros(height, width)
    if not (feathering > 0 and feathering * 2 < height and feathering * 2 < width):
        return mask
    for i in range(height):
        for j in range(width):
            d = min(i if top else height, height - i if bottom else height, j if left else width, width - j if right else width)
            if d < feathering:
                mask[i, j] = ((feathering - d) / feathering) ** 2
    return mask


@pytest.mark.parametrize("sides", [(8, 0, 16, 0), (0, 8, 0, 8), (8, 8, 8, 8), (0, 0, 0, 0)])
def test_pad_for_outpaint_grey_border_and_feathered_mask(bench, sides):
    left, top, right, bottom = sides
    image = torch.rand(2, 20, 24, 3)
    padded, mask = bench.run("ImagePadForOutpaint", image=image, left=left, top=top, right=right, bottom=bottom, feathering=5)
    assert padded.shape == (2, 20 + top + bottom, 24 + left + right, 3)
    assert torch.equal(padded[:, top : top + 20, left : left + 24], image)
    border = torch.ones(padded.shape[1:3], dtype=torch.bool)
    border[top : top + 20, left : left + 24] = False
    assert (padded[:, border] == 0.5).all()
    assert mask.shape == (1, *padded.shape[1:3])
    assert (mask[0][border] == 1).all()
    inner = reference_outpaint_mask(20, 24, top=top, bottom=bottom, left=left, right=right, feathering=5)
    torch.testing.assert_close(mask[0, top : top + 20, left : left + 24], inner)
