"""The first-party node pack. It registers its node types through the same hook as any plugin.

The composition root (server.composition) registers this module with the plugin manager.
"""

from __future__ import annotations

from latentloom.api import NodeType, Services, hookimpl
from latentloom.api.registry import NodeRegistry

SOURCE = "nodes"


def node_types(services: Services) -> tuple[NodeType, ...]:
    """Every node type defined in nodes/, made with the services it needs."""
    # Imported here, not at the top: importing the pack must not load torch (`latentloom --help` stays fast).
    from nodes.conditioning import CLIPSetLastLayer, CLIPTextEncode, ConditioningCombine, ConditioningSetArea
    from nodes.images import ImagePadForOutpaint, ImageScale, LoadImage, PreviewImage, SaveImage
    from nodes.inspector import InspectingKSampler, UNetBlockInspector
    from nodes.latents import (
        EmptyLatent,
        LatentComposite,
        LatentUpscale,
        LatentUpscaleBy,
        RepeatLatentBatch,
        SetLatentNoiseMask,
    )
    from nodes.loaders import CheckpointLoader, VAELoader
    from nodes.lora import LoraLoader, LoraMerge, LoraSave
    from nodes.merge import merge_node_types
    from nodes.sampling import KSampler, KSamplerAdvanced
    from nodes.services import NodeServices
    from nodes.vae_nodes import VAEDecode, VAEDecodeTiled, VAEEncode, VAEEncodeForInpaint

    pack = NodeServices.resolve(services)
    return (
        CheckpointLoader(pack),
        VAELoader(pack),
        CLIPTextEncode(pack),
        CLIPSetLastLayer(),
        ConditioningCombine(),
        ConditioningSetArea(),
        EmptyLatent(),
        LatentUpscale(),
        LatentUpscaleBy(),
        LatentComposite(),
        RepeatLatentBatch(),
        SetLatentNoiseMask(),
        KSampler(pack.previews),
        KSamplerAdvanced(pack.previews),
        VAEDecode(),
        VAEDecodeTiled(),
        VAEEncode(),
        VAEEncodeForInpaint(),
        LoadImage(pack),
        SaveImage(pack),
        PreviewImage(pack),
        ImageScale(),
        ImagePadForOutpaint(),
        UNetBlockInspector(pack), InspectingKSampler(pack),
        LoraLoader(pack), LoraLoader(pack, model_only=True), LoraMerge(pack), LoraSave(pack),
        *merge_node_types(pack),
    )


@hookimpl
def register_nodes(registry: NodeRegistry, services: Services) -> None:
    for node_type in node_types(services):
        registry.register(node_type, source=SOURCE)
