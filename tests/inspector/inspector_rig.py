"""A tiny UNet whose first cross-attention layer is wired by hand: image positions where latent channel 0 is
positive attend to one chosen token, all others to the remaining tokens; every other cross-attention layer
attends evenly to all tokens.

How (input_blocks.0 → input_blocks.1, the first SpatialTransformer, at the latent's size):
- the stem conv copies latent channel 0 into feature channel C, every other channel is 0;
- the ResBlock's last conv is zero, so the block passes its input through (its skip is the identity);
- the transformer's GroupNorm (one channel per group) and identity proj_in keep channel C's sign per pixel;
  self-attention's output projection is zero, so it adds nothing;
- norm2 (LayerNorm) turns each pixel's token into +u or −u (u fixed) by that sign; to_q maps u to GAIN on the
  first dimension of every head; to_k maps the context's dimension 0 to that same dimension, and only the
  chosen token has a 1 there. So the chosen token scores ±GAIN/√d and the others 0: a softmax close to 1
  where channel 0 is positive and close to 0 where it is negative.
"""

from __future__ import annotations

import torch
from support import tiny_sd

from latentloom.diffusion.unet import UNet

FEATURE = 5  # the feature channel that carries latent channel 0
GAIN = 60.0
RIGGED_LAYER = "input_blocks.1.1.transformer_blocks.0.attn2"


def rigged_unet() -> UNet:
    unet = tiny_sd.build_unet(tiny_sd.tiny_unet_config(), seed=4).requires_grad_(False)
    with torch.no_grad():
        _copy_channel_into_features(unet)
        _pass_through_resblock(unet)
        _wire_cross_attention(unet)
        for name, module in unet.named_modules():
            if name.endswith("attn2") and name != RIGGED_LAYER:
                module.to_q.weight.zero_()  # q = 0: every token scores alike, attention is even
    return unet


def _copy_channel_into_features(unet: UNet) -> None:
    stem = unet.input_blocks[0][0]
    stem.weight.zero_()
    stem.bias.zero_()
    stem.weight[FEATURE, 0, 1, 1] = 1.0


def _pass_through_resblock(unet: UNet) -> None:
    last_conv = unet.input_blocks[1][0].out_layers[3]
    last_conv.weight.zero_()
    last_conv.bias.zero_()


def _wire_cross_attention(unet: UNet) -> None:
    transformer = unet.input_blocks[1][1]
    transformer.norm.weight.fill_(1.0)
    transformer.norm.bias.zero_()
    channels = transformer.norm.num_channels
    transformer.proj_in.weight.copy_(torch.eye(channels).reshape(channels, channels, 1, 1))
    transformer.proj_in.bias.zero_()
    block = transformer.transformer_blocks[0]
    block.attn1.to_out[0].weight.zero_()
    block.attn1.to_out[0].bias.zero_()
    for norm in (block.norm1, block.norm2):
        norm.weight.fill_(1.0)
        norm.bias.zero_()
    attn = block.attn2
    heads, inner = attn.heads, attn.to_q.out_features
    dim_head = inner // heads
    u = torch.full((channels,), -1.0 / channels)
    u[FEATURE] += 1.0
    u = u / u.std(correction=0)  # what LayerNorm makes of a token that is +1 on FEATURE and 0 elsewhere
    first_dims = torch.arange(heads) * dim_head
    attn.to_q.weight.zero_()
    attn.to_q.weight[first_dims] = GAIN * u / float(u @ u)
    attn.to_k.weight.zero_()
    attn.to_k.weight[first_dims, 0] = 1.0


def rigged_context(tokens: int, chosen: int, width: int) -> torch.Tensor:
    """(1, tokens, width): only the chosen token has a 1 on dimension 0 (the key the rig looks for)."""
    context = torch.zeros(1, tokens, width)
    context[0, :, 1] = 1.0  # every token something, so the other layers' values are not all zero
    context[0, chosen, 0] = 1.0
    return context


def region_latent(height: int, width: int, region: tuple[slice, slice]) -> torch.Tensor:
    """(1, 4, h, w): channel 0 is +1 inside the region and −1 outside; the other channels are small noise."""
    latent = 0.1 * torch.randn(1, 4, height, width, generator=torch.Generator().manual_seed(0))
    latent[0, 0] = -1.0
    latent[0, 0][region] = 1.0
    return latent
