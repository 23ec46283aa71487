"""Textual-inversion files: the layouts in use, name lookup in folders, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import safetensors.torch
import torch

from latentloom.runtime.embeddings import EmbeddingError, EmbeddingLibrary, EmbeddingNotFound

WIDTH = 8


def vectors(count: int, *, width: int = WIDTH, seed: int = 0) -> torch.Tensor:
    return torch.randn(count, width, generator=torch.Generator().manual_seed(seed))


class NotATensor:
    """Pickled objects of arbitrary classes must never be unpickled."""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "embeddings"
    root.mkdir()
    return root


def test_reads_a1111_pt_layout(folder: Path) -> None:
    expected = vectors(3)
    torch.save({"string_to_param": {"*": expected}, "name": "style", "step": 500}, folder / "style.pt")
    assert torch.equal(EmbeddingLibrary([folder]).load("style", width=WIDTH), expected)


def test_reads_safetensors_emb_params(folder: Path) -> None:
    expected = vectors(2)
    safetensors.torch.save_file({"emb_params": expected}, folder / "style.safetensors")
    assert torch.equal(EmbeddingLibrary([folder]).load("style", width=WIDTH), expected)


def test_reads_a_single_tensor_under_any_key(folder: Path) -> None:
    expected = vectors(4)
    safetensors.torch.save_file({"whatever": expected}, folder / "style.safetensors")
    assert torch.equal(EmbeddingLibrary([folder]).load("style", width=WIDTH), expected)


def test_picks_the_clip_l_tensor_of_a_two_encoder_file(folder: Path) -> None:
    clip_l, clip_g = vectors(2), vectors(2, width=WIDTH * 2, seed=1)
    safetensors.torch.save_file({"clip_g": clip_g, "clip_l": clip_l}, folder / "xl.safetensors")
    assert torch.equal(EmbeddingLibrary([folder]).load("xl", width=WIDTH), clip_l)


def test_reads_a_bare_tensor_bin_and_makes_a_vector_a_row(folder: Path) -> None:
    expected = vectors(1)[0]
    torch.save(expected.to(torch.float16), folder / "one.bin")
    loaded = EmbeddingLibrary([folder]).load("one", width=WIDTH)
    assert loaded.shape == (1, WIDTH) and loaded.dtype == torch.float32
    assert torch.equal(loaded[0], expected.to(torch.float16).float())


def test_name_may_carry_extension_and_subfolder_and_is_found_in_subfolders(folder: Path) -> None:
    (folder / "styles").mkdir()
    expected = vectors(2)
    safetensors.torch.save_file({"emb_params": expected}, folder / "styles" / "ink.safetensors")
    library = EmbeddingLibrary([folder])
    for name in ("styles/ink", "styles/ink.safetensors", "ink", "ink.safetensors"):
        assert torch.equal(library.load(name, width=WIDTH), expected), name
    assert library.names() == ["styles/ink"]


def test_searches_folders_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    safetensors.torch.save_file({"emb_params": vectors(1, seed=1)}, first / "x.safetensors")
    safetensors.torch.save_file({"emb_params": vectors(1, seed=2)}, second / "x.safetensors")
    safetensors.torch.save_file({"emb_params": vectors(1, seed=3)}, second / "y.safetensors")
    library = EmbeddingLibrary([first, second])
    assert torch.equal(library.load("x", width=WIDTH), vectors(1, seed=1))
    assert torch.equal(library.load("y", width=WIDTH), vectors(1, seed=3))
    assert library.names() == ["x", "y"]


def test_missing_name_is_reported_by_name(folder: Path) -> None:
    with pytest.raises(EmbeddingNotFound, match="'nothing-here'"):
        EmbeddingLibrary([folder]).load("nothing-here", width=WIDTH)


def test_names_cannot_climb_out_of_the_folder(tmp_path: Path, folder: Path) -> None:
    safetensors.torch.save_file({"emb_params": vectors(1)}, tmp_path / "outside.safetensors")
    with pytest.raises(EmbeddingNotFound):
        EmbeddingLibrary([folder]).load("../outside", width=WIDTH)


def test_wrong_width_names_both_widths(folder: Path) -> None:
    safetensors.torch.save_file({"emb_params": vectors(2, width=12)}, folder / "sd2.safetensors")
    with pytest.raises(EmbeddingError, match=r"'sd2'.*\(2, 12\).*width 8"):
        EmbeddingLibrary([folder]).load("sd2", width=WIDTH)


def test_unreadable_file_is_a_typed_error(folder: Path) -> None:
    (folder / "broken.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(EmbeddingError, match="'broken': cannot read"):
        EmbeddingLibrary([folder]).load("broken", width=WIDTH)


def test_pickled_objects_are_refused(folder: Path) -> None:
    torch.save({"string_to_param": {"*": vectors(1)}, "payload": NotATensor()}, folder / "evil.pt")
    with pytest.raises(EmbeddingError, match="'evil': cannot read"):
        EmbeddingLibrary([folder]).load("evil", width=WIDTH)


def test_ambiguous_layout_lists_the_keys(folder: Path) -> None:
    two_tensors = {"first": vectors(1), "second": vectors(1, seed=1)}
    safetensors.torch.save_file(two_tensors, folder / "two.safetensors")
    with pytest.raises(EmbeddingError, match=r"\['first', 'second'\]"):
        EmbeddingLibrary([folder]).load("two", width=WIDTH)
