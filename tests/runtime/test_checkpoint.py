"""Reading weight files: safetensors headers and tensors, pickle files only through weights_only, and clear
errors for unsafe, truncated and malformed files."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from latentloom.runtime.checkpoint import (
    CheckpointError,
    CorruptCheckpointError,
    TensorInfo,
    UnsafeCheckpointError,
    load_weights_only,
    open_checkpoint,
    read_header,
    read_state_dict,
)


def sample_tensors() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "model.diffusion_model.out.2.weight": torch.randn(4, 8, 3, 3, generator=generator),
        "first_stage_model.quant_conv.bias": torch.randn(8, generator=generator).half(),
        "cond_stage_model.transformer.text_model.embeddings.position_ids": torch.arange(77).reshape(1, 77),
        "scale": torch.randn(3, generator=generator).bfloat16(),
    }


@pytest.fixture
def safetensors_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.safetensors"
    save_file(sample_tensors(), str(path), metadata={"modelspec.title": "sample"})
    return path


class ArbitraryCode:
    """Unpickling this calls open(marker, "w"): a stand-in for any code a malicious file could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (str(self.marker), "w"))


# --- safetensors --------------------------------------------------------------------------------------


def test_header_gives_names_shapes_and_dtypes_as_safetensors_reports_them(safetensors_file: Path) -> None:
    header = read_header(safetensors_file)
    with safe_open(str(safetensors_file), framework="pt") as reference:
        expected = {key: reference.get_slice(key) for key in reference.keys()}  # noqa: SIM118
        assert set(header) == set(expected)
        for key, info in header.items():
            assert list(info.shape) == list(expected[key].get_shape())
            assert info.dtype == reference.get_tensor(key).dtype
    assert header["scale"] == TensorInfo((3,), torch.bfloat16)
    assert header["model.diffusion_model.out.2.weight"].nbytes == 4 * 8 * 3 * 3 * 4


@pytest.mark.parametrize("read_mode", ["mmap", "pread"])
def test_tensors_read_back_exactly(safetensors_file: Path, read_mode: str) -> None:
    original = sample_tensors()
    with open_checkpoint(safetensors_file, read_mode=read_mode) as reader:  # type: ignore[arg-type]
        assert reader.format == "safetensors"
        assert reader.metadata == {"modelspec.title": "sample"}
        for key, tensor in original.items():
            loaded = reader.get(key)
            assert loaded.dtype == tensor.dtype
            assert torch.equal(loaded, tensor)


def test_get_converts_floating_tensors_only(safetensors_file: Path) -> None:
    original = sample_tensors()
    with open_checkpoint(safetensors_file, read_mode="pread") as reader:
        half = reader.get("first_stage_model.quant_conv.bias", dtype=torch.float32)
        ids = reader.get("cond_stage_model.transformer.text_model.embeddings.position_ids", dtype=torch.float32)
    assert half.dtype == torch.float32
    assert torch.equal(half, original["first_stage_model.quant_conv.bias"].float())
    assert ids.dtype == torch.int64


def test_tensors_outlive_the_reader(safetensors_file: Path) -> None:
    state = read_state_dict(safetensors_file)
    assert torch.equal(state["model.diffusion_model.out.2.weight"], sample_tensors()["model.diffusion_model.out.2.weight"])


def test_asking_for_an_absent_tensor_names_it(safetensors_file: Path) -> None:
    with open_checkpoint(safetensors_file) as reader, pytest.raises(KeyError, match="no tensor named 'nope'"):
        reader.get("nope")


def test_truncated_safetensors_is_refused_naming_the_file(safetensors_file: Path, tmp_path: Path) -> None:
    data = safetensors_file.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[:-100])
    with pytest.raises(CorruptCheckpointError, match="truncated") as caught:
        open_checkpoint(cut)
    assert str(cut) in str(caught.value)


def with_length(header: bytes) -> bytes:
    """A safetensors prefix: the header's length as 8 little-endian bytes, then the header."""
    return len(header).to_bytes(8, "little") + header


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "too short"),
        (b"\x05\x00", "too short"),
        ((10**9).to_bytes(8, "little") + b"{}", "header length field says"),
        (with_length(b"{nope}"), "not valid JSON"),
        (with_length(b"[]"), "not a JSON object"),
        (with_length(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}') + b"1234", "spans 4 bytes"),
        (with_length(b'{"a":{"dtype":"Q9","shape":[],"data_offsets":[0,0]}}'), "unsupported dtype"),
        (with_length(b'{"a":{"shape":1}}'), "malformed"),
    ],
)
def test_malformed_safetensors_headers_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CorruptCheckpointError, match=message):
        read_header(path)


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    odd = tmp_path / "model.gguf"
    odd.write_bytes(b"GGUF")
    with pytest.raises(CheckpointError, match="unknown weight file extension '.gguf'"):
        open_checkpoint(odd)
    with pytest.raises(CheckpointError, match="no such file"):
        open_checkpoint(tmp_path / "absent.safetensors")


# --- pickle-based files ---------------------------------------------------------------------------------


def test_ckpt_state_dict_is_unwrapped_and_bookkeeping_dropped(tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": sample_tensors(), "global_step": 840000, "epoch": 3}, path)
    assert zipfile.is_zipfile(path)
    with open_checkpoint(path) as reader:
        assert reader.format == "pickle"
        assert set(reader.tensors) == set(sample_tensors())
        assert reader.tensors["scale"] == TensorInfo((3,), torch.bfloat16)
        assert torch.equal(reader.get("model.diffusion_model.out.2.weight"), sample_tensors()["model.diffusion_model.out.2.weight"])


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin"])
def test_flat_pickled_state_dicts_load(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"weights{suffix}"
    torch.save({"encoder.conv_in.weight": torch.ones(2, 3), "step": 5}, path)
    assert read_state_dict(path).keys() == {"encoder.conv_in.weight"}


def test_legacy_non_zip_torch_files_load_without_mmap(tmp_path: Path) -> None:
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": {"w": torch.arange(4.0)}}, path, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(path)
    assert torch.equal(read_state_dict(path)["w"], torch.arange(4.0))


def test_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "marker-created-by-the-pickle"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "payload": ArbitraryCode(marker)}, path)
    with pytest.raises(UnsafeCheckpointError) as caught:
        open_checkpoint(path)
    message = str(caught.value)
    assert str(path) in message
    assert "needs code to unpickle" in message and "weights-only" in message
    assert "io.open" in message  # what the file tried to call
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_plain_pickle_payload_is_refused_and_is_live_when_unpickled_unsafely(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    with path.open("wb") as file:
        pickle.dump({"w": ArbitraryCode(marker)}, file)
    with pytest.raises(UnsafeCheckpointError):
        load_weights_only(path)
    assert not marker.exists()
    # Control: the same bytes do run code through an unrestricted unpickler, so the refusal is real.
    with path.open("rb") as file:
        pickle.load(file)  # noqa: S301
    assert marker.exists()


def test_truncated_and_garbage_pickle_files_are_reported_as_corrupt(tmp_path: Path) -> None:
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": sample_tensors()}, good)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint" * 8)
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    for path in (cut, garbage, empty):
        with pytest.raises(CorruptCheckpointError) as caught:
            open_checkpoint(path)
        assert str(path) in str(caught.value)


def test_pickle_without_tensors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="not a mapping"):
        open_checkpoint(path)
    path = tmp_path / "meta.pt"
    torch.save({"epoch": 3}, path)
    with pytest.raises(CheckpointError, match="holds no tensors"):
        open_checkpoint(path)
