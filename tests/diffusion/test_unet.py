"""The SD1/SD2 UNet: checkpoint layout, config read from shapes, agreement with diffusers, observer hooks."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from diffusers.models.embeddings import get_timestep_embedding
from support.diffusers_reference import diffusers_unet
from support.tiny_sd import (
    UNET_PREFIX,
    VAE_PREFIX,
    build_unet,
    full_size_key_shapes,
    random_unet_state_dict,
    strip_prefix,
    tiny_unet_config,
    unet_key_shapes,
)
from torch import Tensor

from latentloom.diffusion.attention import attention_probabilities, multihead_attention
from latentloom.diffusion.observe import AttentionCall, UNetObserver
from latentloom.diffusion.unet import UNet
from latentloom.diffusion.unet_blocks import timestep_embedding
from latentloom.diffusion.unet_config import UNetConfig, UNetLayoutError

CONTEXT_TOKENS = 5


def sd2_style_config() -> UNetConfig:
    """SD2 layout scaled down: linear proj_in/proj_out, fixed head width, attention at both levels."""
    return dataclasses.replace(
        tiny_unet_config(), linear_proj=True, num_head_channels=16, attention_levels=(0, 1)
    )


def inputs(
    config: UNetConfig, *, height: int = 8, width: int = 8, seed: int = 1
) -> tuple[Tensor, Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, config.in_channels, height, width, generator=generator)
    timesteps = torch.tensor([17.0, 801.0])
    context = torch.randn(2, CONTEXT_TOKENS, config.context_dim, generator=generator)
    return x, timesteps, context


@pytest.fixture(scope="module")
def tiny_unet() -> UNet:
    return build_unet(tiny_unet_config(), seed=0)


# --- layout and config ------------------------------------------------------------------------------------


def test_full_size_unet_has_exactly_the_sd15_checkpoint_keys_and_shapes():
    expected = strip_prefix(full_size_key_shapes(), UNET_PREFIX)
    assert len(expected) == 686
    assert unet_key_shapes(UNetConfig()) == expected


def test_config_read_from_sd15_shapes_is_sd15():
    config = UNetConfig.from_state_dict(strip_prefix(full_size_key_shapes(), UNET_PREFIX))
    assert config == UNetConfig()
    assert config.heads_for(640) == (8, 80)


def test_tiny_sd1_config_round_trips_through_its_weights():
    state = random_unet_state_dict(tiny_unet_config(), seed=3)
    assert UNetConfig.from_state_dict(state) == tiny_unet_config()


def test_sd2_layout_is_detected_with_64_wide_heads_by_default():
    sd2 = UNetConfig(
        model_channels=128,
        channel_mult=(1, 2),
        attention_levels=(0, 1),
        context_dim=1024,
        num_head_channels=64,
        linear_proj=True,
    )
    detected = UNetConfig.from_state_dict(unet_key_shapes(sd2))
    assert detected == sd2
    assert detected.heads_for(256) == (4, 64)


def test_head_split_can_be_given_explicitly():
    shapes = unet_key_shapes(sd2_style_config())
    assert UNetConfig.from_state_dict(shapes, num_head_channels=16) == sd2_style_config()


def test_inpainting_input_channels_are_read_from_the_stem():
    config = dataclasses.replace(tiny_unet_config(), in_channels=9)
    assert UNetConfig.from_state_dict(unet_key_shapes(config)).in_channels == 9


def test_a_vae_state_dict_is_rejected_naming_the_missing_key():
    vae_shapes = strip_prefix(full_size_key_shapes(), VAE_PREFIX)
    with pytest.raises(UNetLayoutError, match="input_blocks.0.0.weight"):
        UNetConfig.from_state_dict(vae_shapes)


def test_prefixed_keys_are_rejected_with_a_hint_to_strip_the_prefix():
    with pytest.raises(UNetLayoutError, match="model.diffusion_model"):
        UNetConfig.from_state_dict(full_size_key_shapes())


def test_uneven_res_blocks_per_level_are_rejected():
    shapes = unet_key_shapes(dataclasses.replace(tiny_unet_config(), num_res_blocks=2))
    # input blocks: 0 stem, 1-2 level 0, 3 downsample, 4-5 level 1; dropping 5 leaves level 1 one short
    broken = {key: shape for key, shape in shapes.items() if not key.startswith("input_blocks.5.")}
    with pytest.raises(UNetLayoutError, match="res blocks per level"):
        UNetConfig.from_state_dict(broken)


def test_config_rejects_channels_that_do_not_split_into_heads():
    with pytest.raises(ValueError, match="heads"):
        UNetConfig(model_channels=32, channel_mult=(1,), attention_levels=(0,), num_heads=3)


def test_a_head_split_the_shapes_cannot_take_is_a_layout_error():
    with pytest.raises(UNetLayoutError, match="do not split into heads"):
        UNetConfig.from_state_dict(unet_key_shapes(tiny_unet_config()), num_heads=5)


# --- numerics ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [320, 33])
def test_timestep_embedding_matches_diffusers(dim):
    timesteps = torch.tensor([0.0, 1.0, 17.5, 999.0])
    expected = get_timestep_embedding(timesteps, dim, flip_sin_to_cos=True, downscale_freq_shift=0)
    torch.testing.assert_close(timestep_embedding(timesteps, dim), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("config_name", ["sd1", "sd2"])
@pytest.mark.parametrize("size", [(8, 8), (7, 9)])
def test_unet_agrees_with_diffusers_on_the_same_weights(config_name, size):
    config = tiny_unet_config() if config_name == "sd1" else sd2_style_config()
    state = random_unet_state_dict(config, seed=5)
    ours = UNet(config)
    ours.load_state_dict(state, strict=True)
    reference = diffusers_unet(config, state)
    x, timesteps, context = inputs(config, height=size[0], width=size[1])
    with torch.no_grad():
        out = ours.eval()(x, timesteps, context)
        expected = reference(x, timesteps, encoder_hidden_states=context).sample
    assert out.shape == x.shape
    assert expected.abs().max() > 0.5  # well-scaled weights give a non-trivial output
    torch.testing.assert_close(out, expected, atol=1e-4 * expected.abs().max().item(), rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("config_name", ["sd15", "sd21"])
def test_full_size_unet_agrees_with_diffusers(config_name):
    config = UNetConfig()
    if config_name == "sd21":
        config = dataclasses.replace(config, context_dim=1024, num_head_channels=64, linear_proj=True)
    state = random_unet_state_dict(config, seed=5)
    ours = UNet(config)
    ours.load_state_dict(state, strict=True)
    reference = diffusers_unet(config, state)
    del state
    x, timesteps, context = inputs(config, height=16, width=16)
    with torch.inference_mode():
        out = ours.eval()(x, timesteps, context)
        expected = reference(x, timesteps, encoder_hidden_states=context).sample
    torch.testing.assert_close(out, expected, atol=1e-4 * expected.abs().max().item(), rtol=0)


def test_single_timestep_is_broadcast_over_the_batch(tiny_unet):
    x, _, context = inputs(tiny_unet.config)
    with torch.no_grad():
        broadcast = tiny_unet(x, torch.tensor(400.0), context)
        explicit = tiny_unet(x, torch.tensor([400.0, 400.0]), context)
    torch.testing.assert_close(broadcast, explicit)


def test_batch_size_mismatch_is_a_clear_error(tiny_unet):
    x, timesteps, context = inputs(tiny_unet.config)
    with pytest.raises(ValueError, match="batch sizes differ"):
        tiny_unet(x, timesteps, context[:1])


def test_channels_last_gives_the_same_output():
    unet = build_unet(tiny_unet_config(), seed=0)
    x, timesteps, context = inputs(unet.config)
    with torch.no_grad():
        expected = unet(x, timesteps, context)
        unet = unet.to(memory_format=torch.channels_last)
        out = unet(x.to(memory_format=torch.channels_last), timesteps, context)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_bfloat16_weights_compute_in_bfloat16_and_return_the_callers_dtype():
    unet = build_unet(tiny_unet_config(), seed=0)
    x, timesteps, context = inputs(unet.config)
    with torch.no_grad():
        expected = unet(x, timesteps, context)
        out = unet.to(torch.bfloat16)(x, timesteps, context)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    relative_error = (out - expected).norm() / expected.norm()
    assert 0 < relative_error < 0.05


# --- attention helpers and the observer -------------------------------------------------------------------


def test_attention_probabilities_are_the_softmax_of_scaled_scores():
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(2, 6, 4 * 8, generator=generator)
    k = torch.randn(2, 3, 4 * 8, generator=generator)
    v = torch.randn(2, 3, 4 * 8, generator=generator)
    probabilities = attention_probabilities(q, k, heads=4)
    assert probabilities.shape == (2, 4, 6, 3)
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(2, 4, 6))
    head = 2
    scores = q[:, :, head * 8 : (head + 1) * 8] @ k[:, :, head * 8 : (head + 1) * 8].transpose(1, 2) / 8**0.5
    torch.testing.assert_close(probabilities[:, head], torch.softmax(scores, dim=-1))
    # the default attention is exactly these weights applied to v, per head
    per_head = probabilities @ v.unflatten(-1, (4, 8)).transpose(1, 2)  # (batch, heads, 6, 8)
    torch.testing.assert_close(multihead_attention(q, k, v, heads=4), per_head.transpose(1, 2).flatten(2))


class Recorder(UNetObserver):
    def __init__(self) -> None:
        self.blocks: list[tuple[str, tuple[int, ...]]] = []
        self.skips: list[tuple[str, str]] = []
        self.calls: list[AttentionCall] = []

    def block_output(self, name: str, output: Tensor) -> None:
        self.blocks.append((name, tuple(output.shape)))

    def skip(self, *, source: str, target: str, tensor: Tensor) -> None:
        self.skips.append((source, target))

    def attention(self, call: AttentionCall) -> Tensor | None:
        self.calls.append(call)
        return None


def test_observer_sees_every_block_output_and_skip_in_order(tiny_unet):
    recorder = Recorder()
    x, timesteps, context = inputs(tiny_unet.config)
    with torch.no_grad():
        tiny_unet(x, timesteps, context, observer=recorder)
    assert recorder.blocks == [
        ("input_blocks.0", (2, 32, 8, 8)),
        ("input_blocks.1", (2, 32, 8, 8)),
        ("input_blocks.2", (2, 32, 4, 4)),
        ("input_blocks.3", (2, 64, 4, 4)),
        ("middle_block", (2, 64, 4, 4)),
        ("output_blocks.0", (2, 64, 4, 4)),
        ("output_blocks.1", (2, 64, 8, 8)),
        ("output_blocks.2", (2, 32, 8, 8)),
        ("output_blocks.3", (2, 32, 8, 8)),
    ]
    assert recorder.skips == [
        ("input_blocks.3", "output_blocks.0"),
        ("input_blocks.2", "output_blocks.1"),
        ("input_blocks.1", "output_blocks.2"),
        ("input_blocks.0", "output_blocks.3"),
    ]


def test_observer_gets_each_attention_layer_by_name_with_its_q_k_v(tiny_unet):
    recorder = Recorder()
    x, timesteps, context = inputs(tiny_unet.config)
    with torch.no_grad():
        tiny_unet(x, timesteps, context, observer=recorder)
    layers = [(call.layer, call.cross, call.spatial) for call in recorder.calls]
    assert layers == [
        ("input_blocks.1.1.transformer_blocks.0.attn1", False, (8, 8)),
        ("input_blocks.1.1.transformer_blocks.0.attn2", True, (8, 8)),
        ("middle_block.1.transformer_blocks.0.attn1", False, (4, 4)),
        ("middle_block.1.transformer_blocks.0.attn2", True, (4, 4)),
        ("output_blocks.2.1.transformer_blocks.0.attn1", False, (8, 8)),
        ("output_blocks.2.1.transformer_blocks.0.attn2", True, (8, 8)),
        ("output_blocks.3.1.transformer_blocks.0.attn1", False, (8, 8)),
        ("output_blocks.3.1.transformer_blocks.0.attn2", True, (8, 8)),
    ]
    cross = recorder.calls[1]
    assert cross.heads == 8
    assert cross.q.shape == (2, 64, 32)
    assert cross.k.shape == cross.v.shape == (2, CONTEXT_TOKENS, 32)
    assert recorder.calls[0].k.shape == (2, 64, 32)


class ProbabilityAttention(UNetObserver):
    """Computes every attention itself from the recorded probabilities."""

    def __init__(self) -> None:
        self.maps: dict[str, Tensor] = {}

    def attention(self, call: AttentionCall) -> Tensor | None:
        probabilities = attention_probabilities(call.q, call.k, call.heads)
        self.maps[call.layer] = probabilities
        v = call.v.unflatten(-1, (call.heads, -1)).transpose(1, 2)  # (batch, heads, tokens, dim_head)
        return (probabilities @ v).transpose(1, 2).flatten(2)


def test_observer_can_replace_attention_and_record_probabilities(tiny_unet):
    x, timesteps, context = inputs(tiny_unet.config)
    observer = ProbabilityAttention()
    with torch.no_grad():
        plain = tiny_unet(x, timesteps, context)
        replaced = tiny_unet(x, timesteps, context, observer=observer)
    torch.testing.assert_close(replaced, plain, atol=1e-5, rtol=1e-5)
    cross_map = observer.maps["middle_block.1.transformer_blocks.0.attn2"]
    assert cross_map.shape == (2, 8, 16, CONTEXT_TOKENS)


class SilenceCrossAttention(UNetObserver):
    def __init__(self, layer: str) -> None:
        self.layer = layer

    def attention(self, call: AttentionCall) -> Tensor | None:
        return torch.zeros_like(call.q) if call.layer == self.layer else None


def test_replacing_attention_affects_only_the_call_that_carries_the_observer(tiny_unet):
    x, timesteps, context = inputs(tiny_unet.config)
    before = {key: value.clone() for key, value in tiny_unet.state_dict().items()}
    with torch.no_grad():
        plain = tiny_unet(x, timesteps, context)
        silencer = SilenceCrossAttention("input_blocks.1.1.transformer_blocks.0.attn2")
        silenced = tiny_unet(x, timesteps, context, observer=silencer)
        after = tiny_unet(x, timesteps, context)
    assert (silenced - plain).abs().max() > 1e-3
    torch.testing.assert_close(after, plain, atol=0, rtol=0)
    assert all(torch.equal(before[key], value) for key, value in tiny_unet.state_dict().items())
