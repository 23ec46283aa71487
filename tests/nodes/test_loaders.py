"""CheckpointLoader and VAELoader: choices follow the folders, a replaced file loads again, errors name the input."""

from __future__ import annotations

import os

import pytest
import torch
from nodes_harness import TINY_CHECKPOINT, NodeBench
from safetensors.torch import save_file
from support import tiny_sd
from support.checkpoint_factory import tiny_sd15_unet_config, write_tiny_sd15_checkpoint

from latentloom.api import NodeInputError
from latentloom.runtime.handles import ClipHandle, ModelHandle, VaeHandle


def choices(bench: NodeBench, node: str, input_name: str) -> list[str]:
    return bench.registry.object_info(node)[node]["input"]["required"][input_name][0]


def test_checkpoint_loader_gives_model_clip_and_vae_of_the_file(bench):
    model, clip, vae = bench.loaded
    assert isinstance(model, ModelHandle) and isinstance(clip, ClipHandle) and isinstance(vae, VaeHandle)
    assert model.source.endswith(TINY_CHECKPOINT) and model.devices is bench.devices
    assert model.unet.config == tiny_sd15_unet_config()  # the architecture read back from the shapes
    assert choices(bench, "CheckpointLoaderSimple", "ckpt_name") == [TINY_CHECKPOINT]


def test_checkpoint_choices_follow_the_folder_and_a_replaced_file_changes_the_fingerprint(tmp_path):
    bench = NodeBench.over(tmp_path)
    folder = tmp_path / "models" / "checkpoints"
    assert choices(bench, "CheckpointLoader", "ckpt_name") == []
    folder.mkdir(parents=True)
    path = write_tiny_sd15_checkpoint(folder / "one.safetensors")
    assert choices(bench, "CheckpointLoader", "ckpt_name") == ["one.safetensors"]
    node = bench.node("CheckpointLoader")
    before = node.fingerprint(ckpt_name="one.safetensors")
    write_tiny_sd15_checkpoint(path, seed=1)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert node.fingerprint(ckpt_name="one.safetensors") != before


def test_checkpoint_loader_errors_name_the_input(tmp_path):
    bench = NodeBench.over(tmp_path)
    folder = tmp_path / "models" / "checkpoints"
    folder.mkdir(parents=True)
    save_file({"not.a.model": torch.zeros(2)}, str(folder / "junk.safetensors"))
    with pytest.raises(NodeInputError, match="input 'ckpt_name'.*junk.safetensors"):
        bench.run("CheckpointLoader", ckpt_name="junk.safetensors")
    with pytest.raises(NodeInputError, match="input 'ckpt_name'"):
        bench.run("CheckpointLoader", ckpt_name="absent.safetensors")


def test_vae_loader_loads_a_standalone_vae_file(tmp_path, bench):
    vae_state = tiny_sd.random_vae_state_dict(tiny_sd.tiny_vae_config(), seed=3)
    folder = tmp_path / "models" / "vae"
    folder.mkdir(parents=True)
    save_file(vae_state, str(folder / "tiny-vae.safetensors"))
    local = NodeBench.over(tmp_path)
    assert choices(local, "VAELoader", "vae_name") == ["tiny-vae.safetensors"]
    (vae,) = local.run("VAELoader", vae_name="tiny-vae.safetensors")
    assert isinstance(vae, VaeHandle)
    assert all(torch.equal(vae.vae.state_dict()[k], v) for k, v in vae_state.items())
    with pytest.raises(NodeInputError, match="input 'vae_name'"):
        local.run("VAELoader", vae_name="nope.safetensors")
