"""What the first-party nodes take from the composition root's Services, resolved once at registration."""

from __future__ import annotations

from dataclasses import dataclass

from latentloom.api import PreviewSettings, Services
from latentloom.runtime.devices import DeviceManager
from latentloom.runtime.embeddings import EmbeddingLibrary
from latentloom.runtime.folders import ModelFolders


@dataclass(frozen=True)
class NodeServices:
    folders: ModelFolders  # models, and the input/output/temp folders that /view and /upload use
    devices: DeviceManager
    embeddings: EmbeddingLibrary
    # Whether samplers offer live previews (the server's --preview-method); absent service: latent2rgb.
    previews: PreviewSettings = PreviewSettings()

    @classmethod
    def resolve(cls, services: Services) -> NodeServices:
        """Take the shared objects; without an EmbeddingLibrary service, one over the embeddings folders."""
        folders = services.get(ModelFolders)
        embeddings = services.find(EmbeddingLibrary) or EmbeddingLibrary(folders.roots("embeddings"))
        previews = services.find(PreviewSettings) or PreviewSettings()
        return cls(folders=folders, devices=services.get(DeviceManager), embeddings=embeddings, previews=previews)
