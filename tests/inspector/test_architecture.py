"""The architecture table: SD1.5's published layout, and the shapes a real forward pass produces."""

from __future__ import annotations

import pytest
import torch
from support import tiny_sd

from latentloom.diffusion.inspect.architecture import block_of_layer, unet_architecture
from latentloom.diffusion.inspect.capture import CaptureOptions, InspectionObserver
from latentloom.diffusion.unet import UNet
from latentloom.diffusion.unet_config import UNetConfig

# Stable Diffusion 1.5's UNet (diffusers' UNet2DConditionModel for the v1-5 config) has this many parameters.
SD15_UNET_PARAMETERS = 859_520_964


@pytest.fixture(scope="module")
def sd15_table():
    with torch.device("meta"):
        unet = UNet(UNetConfig())
    return unet, unet_architecture(unet, (64, 64))


def test_sd15_has_twelve_input_one_middle_twelve_output_blocks(sd15_table) -> None:
    _, table = sd15_table
    names = [b.name for b in table]
    assert names == [f"input_blocks.{i}" for i in range(12)] + ["middle_block"] + [f"output_blocks.{i}" for i in range(12)]


def test_sd15_sizes_channels_and_modules_for_a_512px_latent(sd15_table) -> None:
    _, table = sd15_table
    sizes = [b.size[0] for b in table]
    assert sizes == [64, 64, 64, 32, 32, 32, 16, 16, 16, 8, 8, 8, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64, 64]
    channels = [b.out_channels for b in table]
    assert channels == [320] * 4 + [640] * 3 + [1280] * 5 + [1280] + [1280] * 6 + [640] * 3 + [320] * 3
    by_name = {b.name: b for b in table}
    assert by_name["input_blocks.0"].modules == ("Conv2d",)
    assert by_name["input_blocks.1"].modules == ("ResBlock", "SpatialTransformer")
    assert by_name["input_blocks.3"].modules == ("Downsample",)
    assert by_name["input_blocks.10"].modules == ("ResBlock",)
    assert by_name["middle_block"].modules == ("ResBlock", "SpatialTransformer", "ResBlock")
    assert by_name["output_blocks.2"].modules == ("ResBlock", "Upsample")
    assert by_name["output_blocks.5"].modules == ("ResBlock", "SpatialTransformer", "Upsample")
    assert by_name["output_blocks.0"].in_channels == 1280 + 1280  # running features + the skip of input_blocks.11
    assert by_name["output_blocks.11"].in_channels == 320 + 320


def test_sd15_cross_attention_sites(sd15_table) -> None:
    _, table = sd15_table
    sites = [site for block in table for site in block.cross_attention]
    assert len(sites) == 16
    assert {block_of_layer(s.layer) for s in sites} == {
        *(f"input_blocks.{i}" for i in (1, 2, 4, 5, 7, 8)),
        "middle_block",
        *(f"output_blocks.{i}" for i in range(3, 12)),
    }
    assert all(s.heads == 8 and s.context_dim == 768 for s in sites)
    assert {(s.size[0], s.dim_head) for s in sites} == {(64, 40), (32, 80), (16, 160), (8, 160)}
    # In output_blocks.5 the transformer runs before the Upsample: at 16x16, while the block outputs 32x32.
    assert [s.size for s in next(b for b in table if b.name == "output_blocks.5").cross_attention] == [(16, 16)]


def test_sd15_parameters_add_up_to_the_published_count(sd15_table) -> None:
    unet, table = sd15_table
    outside_blocks = sum(p.numel() for m in (unet.time_embed, unet.out) for p in m.parameters())
    assert sum(b.parameters for b in table) + outside_blocks == SD15_UNET_PARAMETERS


def test_skips_pair_input_and_output_blocks_as_forward_does(sd15_table) -> None:
    _, table = sd15_table
    by_name = {b.name: b for b in table}
    for index in range(12):
        source = by_name[f"output_blocks.{index}"].skip_from
        assert source == f"input_blocks.{11 - index}"
        assert by_name[source].skip_to == f"output_blocks.{index}"


@pytest.mark.parametrize("size", [(8, 12), (7, 9), (5, 3)])
def test_captured_block_shapes_match_the_table(tiny_unet, size) -> None:
    """Odd sizes too: a Downsample rounds up and the Upsample returns to the skip's size."""
    observer = InspectionObserver(CaptureOptions(feature_maps=False))
    x = torch.randn(2, 4, *size, generator=torch.Generator().manual_seed(0))
    context = torch.randn(2, 5, tiny_unet.config.context_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        tiny_unet(x, torch.tensor([500.0]), context, observer=observer)
    [capture] = observer.passes
    table = unet_architecture(tiny_unet, size)
    assert list(capture.blocks) == [b.name for b in table]
    for block in table:
        assert capture.blocks[block.name].shape == (2, block.out_channels, *block.size)
    assert [(s.source, s.target) for s in capture.skips] == [(b.skip_from, b.name) for b in table if b.stage == "output"]
    sites = [(s.layer, s.size) for b in table for s in b.cross_attention]
    assert [(a.layer, a.size) for a in capture.attention] == sites


def test_three_level_unet_table_matches_its_forward_pass() -> None:
    config = UNetConfig(model_channels=32, channel_mult=(1, 2, 2), num_res_blocks=2, attention_levels=(1, 2),
                        transformer_depth=2, context_dim=16)  # fmt: skip
    unet = tiny_sd.build_unet(config, seed=3)
    observer = InspectionObserver(CaptureOptions(feature_maps=False))
    with torch.no_grad():
        unet(torch.randn(1, 4, 11, 6), torch.tensor([10.0]), torch.randn(1, 3, 16), observer=observer)
    table = unet_architecture(unet, (11, 6))
    assert len(table) == 1 + 3 * 2 + 2 + 1 + 3 * 3
    assert [observer.passes[0].blocks[b.name].shape[1:] for b in table] == [(b.out_channels, *b.size) for b in table]
    assert sum(len(b.cross_attention) for b in table) == len(observer.passes[0].attention) == 2 * (2 + 2 + 1 + 3 + 3)
    assert sum(b.parameters for b in table) == sum(p.numel() for n, p in unet.named_parameters() if "_blocks" in n or "middle" in n)
