"""CheckpointLoader (ComfyUI's CheckpointLoaderSimple) and VAELoader: files from the model folders as handles.

The file choices are listed from the folders on every request. A loaded handle is cached by the engine
with the file's size and modification time in its key, so a replaced file loads again.
"""

from __future__ import annotations

import os
from pathlib import Path

from latentloom import api
from latentloom.api import ComboInput, NodeInputError, NodeSchema, NodeType, Output
from latentloom.api.errors import LatentLoomError
from latentloom.runtime.folders import ModelFolderError
from latentloom.runtime.loader import load_checkpoint, load_vae
from nodes.services import NodeServices


def file_fingerprint(path: Path) -> tuple[str, int, int]:
    """What changes when a file is replaced: its path, size and modification time (ns)."""
    stat = os.stat(path)
    return (str(path), stat.st_size, stat.st_mtime_ns)


def _model_path(services: NodeServices, kind: str, name: str, input_name: str) -> Path:
    try:
        return services.folders.path(kind, name)
    except ModelFolderError as error:
        raise NodeInputError(input_name, str(error)) from error


class CheckpointLoader(NodeType):
    def __init__(self, services: NodeServices) -> None:
        self.services = services
        self.schema = NodeSchema(
            type="CheckpointLoader",
            aliases=("CheckpointLoaderSimple",),
            display_name="Load Checkpoint",
            category="loaders",
            description="Loads a Stable Diffusion 1.x checkpoint: the diffusion model, text encoder and VAE.",
            required=(
                ComboInput(
                    "ckpt_name",
                    choices=lambda: services.folders.list("checkpoints"),
                    tooltip="The name of the checkpoint (model) to load.",
                ),
            ),
            outputs=(
                Output(api.types.MODEL, tooltip="The model used for denoising latents."),
                Output(api.types.CLIP, tooltip="The CLIP model used for encoding text prompts."),
                Output(api.types.VAE, tooltip="The VAE used to encode and decode images to and from latent space."),
            ),
        )

    def fingerprint(self, **literals: object) -> object:
        name = literals.get("ckpt_name")
        return None if not isinstance(name, str) else file_fingerprint(self.services.folders.path("checkpoints", name))

    def execute(self, ctx: api.ExecutionContext, *, ckpt_name: str) -> tuple:
        path = _model_path(self.services, "checkpoints", ckpt_name, "ckpt_name")
        try:
            model, clip, vae = load_checkpoint(path, devices=self.services.devices)
        except LatentLoomError as error:
            raise NodeInputError("ckpt_name", str(error)) from error
        return (model, clip, vae)


class VAELoader(NodeType):
    def __init__(self, services: NodeServices) -> None:
        self.services = services
        self.schema = NodeSchema(
            type="VAELoader",
            display_name="Load VAE",
            category="loaders",
            required=(ComboInput("vae_name", choices=lambda: services.folders.list("vae")),),
            outputs=(Output(api.types.VAE),),
        )

    def fingerprint(self, **literals: object) -> object:
        name = literals.get("vae_name")
        return None if not isinstance(name, str) else file_fingerprint(self.services.folders.path("vae", name))

    def execute(self, ctx: api.ExecutionContext, *, vae_name: str) -> tuple:
        path = _model_path(self.services, "vae", vae_name, "vae_name")
        try:
            return (load_vae(path, devices=self.services.devices),)
        except LatentLoomError as error:
            raise NodeInputError("vae_name", str(error)) from error
