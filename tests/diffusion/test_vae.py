"""The SD KL autoencoder: checkpoint layout, config read from shapes, agreement with diffusers, sampling,
latent scale and tiled encode/decode."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from support.diffusers_reference import diffusers_vae
from support.tiny_sd import (
    UNET_PREFIX,
    VAE_PREFIX,
    build_vae,
    full_size_key_shapes,
    random_vae_state_dict,
    strip_prefix,
    tiny_vae_config,
    vae_key_shapes,
)
from torch import Tensor

from latentloom.diffusion.vae import VAE, LatentDistribution, VAEConfig, VAELayoutError, blend_tiles


def images(batch: int, height: int, width: int, *, seed: int = 1) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, height, width, generator=generator) * 2 - 1


def latents(batch: int, height: int, width: int, *, seed: int = 2) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 4, height, width, generator=generator)


@pytest.fixture(scope="module")
def tiny_vae() -> VAE:
    return build_vae(tiny_vae_config(), seed=0)


# --- layout and config ------------------------------------------------------------------------------------


def test_full_size_vae_has_exactly_the_sd15_checkpoint_keys_and_shapes():
    expected = strip_prefix(full_size_key_shapes(), VAE_PREFIX)
    assert len(expected) == 248
    assert vae_key_shapes(VAEConfig()) == expected


def test_config_read_from_sd15_shapes_is_sd15():
    config = VAEConfig.from_state_dict(strip_prefix(full_size_key_shapes(), VAE_PREFIX))
    assert config == VAEConfig()
    assert (config.latent_channels, config.downscale, config.scale_factor) == (4, 8, 0.18215)


@pytest.mark.parametrize("linear_attention", [False, True])
def test_tiny_config_round_trips_through_its_weights(linear_attention):
    config = dataclasses.replace(tiny_vae_config(), linear_attention=linear_attention)
    assert VAEConfig.from_state_dict(random_vae_state_dict(config, seed=3)) == config


def test_linear_attention_weights_are_two_dimensional():
    shapes = vae_key_shapes(dataclasses.replace(tiny_vae_config(), linear_attention=True))
    assert shapes["decoder.mid.attn_1.q.weight"] == (64, 64)
    assert shapes["decoder.mid.attn_1.proj_out.weight"] == (64, 64)


def test_scale_factor_is_given_by_the_caller_not_the_shapes():
    shapes = vae_key_shapes(tiny_vae_config())
    assert VAEConfig.from_state_dict(shapes, scale_factor=0.13025).scale_factor == 0.13025


def test_a_unet_state_dict_is_rejected_naming_the_missing_key():
    with pytest.raises(VAELayoutError, match="encoder.conv_in.weight"):
        VAEConfig.from_state_dict(strip_prefix(full_size_key_shapes(), UNET_PREFIX))


def test_attention_inside_levels_is_rejected():
    shapes = dict(vae_key_shapes(tiny_vae_config()))
    shapes["encoder.down.3.attn.0.q.weight"] = (64, 64, 1, 1)
    with pytest.raises(VAELayoutError, match="mid.attn_1"):
        VAEConfig.from_state_dict(shapes)


def test_widths_that_group_norm_cannot_split_are_rejected():
    with pytest.raises(ValueError, match="multiples of 32"):
        VAEConfig(ch=48, ch_mult=(1, 2))


# --- numerics against diffusers ---------------------------------------------------------------------------


@pytest.mark.parametrize("linear_attention", [False, True])
def test_encode_and_decode_agree_with_diffusers_on_the_same_weights(linear_attention):
    config = dataclasses.replace(tiny_vae_config(), linear_attention=linear_attention)
    state = random_vae_state_dict(config, seed=5)
    ours = VAE(config)
    ours.load_state_dict(state, strict=True)
    reference = diffusers_vae(config, state)
    pixels, z = images(2, 64, 48), latents(2, 8, 6)
    with torch.no_grad():
        posterior, expected_posterior = ours.eval().encode(pixels), reference.encode(pixels).latent_dist
        decoded, expected_decoded = ours.decode(z), reference.decode(z).sample
    assert posterior.mean.shape == (2, 4, 8, 6)
    scale = expected_posterior.mean.abs().max().item()
    torch.testing.assert_close(posterior.mean, expected_posterior.mean, atol=1e-4 * scale, rtol=0)
    torch.testing.assert_close(posterior.logvar, expected_posterior.logvar, atol=1e-4 * scale, rtol=0)
    assert decoded.shape == (2, 3, 64, 48)
    scale = expected_decoded.abs().max().item()
    assert scale > 0.5  # well-scaled weights give a non-trivial image
    torch.testing.assert_close(decoded, expected_decoded, atol=1e-4 * scale, rtol=0)


@pytest.mark.slow
def test_full_size_vae_agrees_with_diffusers():
    state = random_vae_state_dict(VAEConfig(), seed=5)
    ours = VAE(VAEConfig())
    ours.load_state_dict(state, strict=True)
    reference = diffusers_vae(VAEConfig(), state)
    pixels, z = images(1, 64, 64), latents(1, 8, 8)
    with torch.inference_mode():
        mean, expected_mean = ours.eval().encode(pixels).mean, reference.encode(pixels).latent_dist.mean
        decoded, expected_decoded = ours.decode(z), reference.decode(z).sample
    torch.testing.assert_close(mean, expected_mean, atol=1e-4 * expected_mean.abs().max().item(), rtol=0)
    torch.testing.assert_close(
        decoded, expected_decoded, atol=1e-4 * expected_decoded.abs().max().item(), rtol=0
    )


# --- distribution and latent scale -----------------------------------------------------------------------


def test_sample_is_mean_plus_std_times_the_generators_noise(tiny_vae):
    with torch.no_grad():
        posterior = tiny_vae.encode(images(1, 32, 32))
    sample = posterior.sample(generator=torch.Generator().manual_seed(7))
    noise = torch.randn(posterior.mean.shape, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(sample, posterior.mean + torch.exp(0.5 * posterior.logvar) * noise)
    assert not torch.equal(sample, posterior.sample(generator=torch.Generator().manual_seed(8)))
    assert torch.equal(posterior.mode(), posterior.mean)


def test_logvar_is_clamped_like_ldm():
    low, high = torch.full((1, 2, 2, 2), -100.0), torch.full((1, 2, 2, 2), 100.0)
    moments = torch.cat([torch.zeros(1, 4, 2, 2), low, high], dim=1)
    distribution = LatentDistribution.from_moments(moments)
    assert distribution.logvar[:, :2].eq(-30.0).all() and distribution.logvar[:, 2:].eq(20.0).all()


def test_latent_scale_is_applied_and_undone_by_the_vae(tiny_vae):
    z = latents(1, 4, 4)
    torch.testing.assert_close(tiny_vae.scale_latents(z), z * 0.18215)
    torch.testing.assert_close(tiny_vae.unscale_latents(tiny_vae.scale_latents(z)), z)


def test_bfloat16_weights_return_the_callers_dtype():
    vae = build_vae(tiny_vae_config(), seed=0)
    z = latents(1, 4, 4)
    with torch.no_grad():
        expected = vae.decode(z)
        out = vae.to(torch.bfloat16).decode(z)
    assert out.dtype == torch.float32
    assert (out - expected).norm() / expected.norm() < 0.05


# --- tiling -----------------------------------------------------------------------------------------------


def test_decode_tiled_equals_decode_when_one_tile_covers_the_latent(tiny_vae):
    z = latents(1, 8, 12)
    with torch.no_grad():
        assert torch.equal(tiny_vae.decode_tiled(z, tile=12, overlap=4), tiny_vae.decode(z))


def test_encode_tiled_equals_encode_when_one_tile_covers_the_image(tiny_vae):
    pixels = images(1, 64, 96)
    with torch.no_grad():
        tiled, plain = tiny_vae.encode_tiled(pixels, tile=12, overlap=4), tiny_vae.encode(pixels)
    assert torch.equal(tiled.mean, plain.mean) and torch.equal(tiled.logvar, plain.logvar)


def test_blending_is_a_partition_of_unity_for_a_pixelwise_function():
    x = latents(2, 13, 21)

    def upscale(window: Tensor) -> Tensor:
        return torch.nn.functional.interpolate(window * 3.0, scale_factor=4, mode="nearest")

    out = blend_tiles(upscale, x, grid=(13, 21), tile=6, overlap=2, in_scale=1, out_scale=4)
    torch.testing.assert_close(out, upscale(x))


def test_overlaps_are_cross_faded_linearly():
    # each window returns its own constant: the blend must ramp linearly from one to the next
    x = torch.arange(12.0).reshape(1, 1, 1, 12)

    def window_mean(window: Tensor) -> Tensor:
        return torch.full_like(window, window.mean().item())

    out = blend_tiles(window_mean, x, grid=(1, 12), tile=8, overlap=4, in_scale=1, out_scale=1)[0, 0, 0]
    # windows [0, 8) with mean 3.5 and [4, 12) with mean 7.5; overlap 4..7 ramps with weights k/5
    expected = torch.tensor([3.5] * 4 + [3.5 + 4.0 * k / 5 for k in range(1, 5)] + [7.5] * 4)
    torch.testing.assert_close(out, expected)


def test_decode_tiled_stays_close_to_decode(tiny_vae):
    # GroupNorm statistics and the mid attention see one tile at a time, so tiling is an approximation
    z = latents(1, 24, 32)
    with torch.no_grad():
        plain = tiny_vae.decode(z)
        tiled = tiny_vae.decode_tiled(z, tile=16, overlap=8)
        other = tiny_vae.decode(latents(1, 24, 32, seed=9))
    assert tiled.shape == plain.shape == (1, 3, 192, 256)
    assert (tiled - plain).abs().mean() < 0.25 * (other - plain).abs().mean()


def test_encode_tiled_stays_close_to_encode(tiny_vae):
    pixels = images(1, 192, 256)
    with torch.no_grad():
        plain = tiny_vae.encode(pixels).mean
        tiled = tiny_vae.encode_tiled(pixels, tile=16, overlap=8).mean
        other = tiny_vae.encode(images(1, 192, 256, seed=9)).mean
    assert tiled.shape == plain.shape == (1, 4, 24, 32)
    assert (tiled - plain).abs().mean() < 0.25 * (other - plain).abs().mean()


def test_encode_tiled_needs_sides_that_are_multiples_of_the_downscale(tiny_vae):
    with pytest.raises(ValueError, match="multiple of 8"):
        tiny_vae.encode_tiled(images(1, 100, 64), tile=4, overlap=1)


@pytest.mark.parametrize(("tile", "overlap"), [(8, 8), (0, 0), (8, -1)])
def test_tiling_rejects_bad_tile_and_overlap(tiny_vae, tile, overlap):
    with pytest.raises(ValueError, match="overlap"):
        tiny_vae.decode_tiled(latents(1, 16, 16), tile=tile, overlap=overlap)
