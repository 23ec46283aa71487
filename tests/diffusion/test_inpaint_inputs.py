"""The inpainting model's extra input (diffusion.inpaint) and how guidance hands it to the network."""

from __future__ import annotations

import torch

from latentloom.diffusion.guidance import Cond, cfg_denoiser
from latentloom.diffusion.inpaint import BLANK_IMAGE_LATENT, inpaint_concat, is_inpainting_model


def test_the_mask_is_resized_to_the_latent_rounded_and_put_before_the_image_latent():
    latent = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 8:40] = 1.0  # latent pixels 2..5 down, 1..4 across
    concat = inpaint_concat(latent, mask)
    expected_mask = torch.zeros(8, 8)
    expected_mask[2:6, 1:5] = 1.0
    assert concat.shape == (2, 5, 8, 8)
    for item in range(2):  # one mask serves the whole batch
        assert torch.equal(concat[item, 0], expected_mask)
    assert torch.equal(concat[:, 1:], latent)


def test_without_a_mask_the_image_is_the_latent_of_black_pixels_everywhere():
    concat = inpaint_concat(torch.zeros(1, 4, 3, 5), None)
    assert torch.equal(concat[:, 0], torch.ones(1, 3, 5))
    for channel, value in enumerate(BLANK_IMAGE_LATENT):
        assert torch.equal(concat[0, 1 + channel], torch.full((3, 5), value))


def test_only_nine_channel_unets_are_inpainting_models():
    assert is_inpainting_model(9) and not is_inpainting_model(4) and not is_inpainting_model(8)


def test_an_area_cond_hands_the_network_the_same_region_of_a_latent_shaped_extra():
    seen = []

    def network(x, sigma, *, context, concat):
        seen.append((x.shape, concat.clone()))
        return torch.zeros_like(x)

    concat = torch.arange(1 * 5 * 8 * 8, dtype=torch.float32).reshape(1, 5, 8, 8)
    embedding = torch.zeros(1, 3, 4)
    corner = Cond(embedding, area=(4, 4, 0, 4), extra={"concat": concat})  # (h, w, y, x) in latent pixels
    whole = Cond(embedding, extra={"concat": concat})
    guided = cfg_denoiser(network, [corner], [whole], cfg=2.0)
    guided(torch.zeros(1, 4, 8, 8), torch.tensor([1.0]))
    # The corner cond and the copy of the whole cond that CFG gives it on the other side share one call.
    calls = {x_shape[-2:]: extra for x_shape, extra in seen}
    assert sorted(calls) == [(4, 4), (8, 8)]
    assert torch.equal(calls[(4, 4)], concat[..., 0:4, 4:8].expand(2, -1, -1, -1))
    assert torch.equal(calls[(8, 8)], concat)
