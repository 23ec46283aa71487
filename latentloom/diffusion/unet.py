"""The Stable Diffusion 1.x/2.x UNet: eps (or v) prediction from a noisy latent, a timestep and a context.

Module names follow CompVis ``openaimodel.py`` (time_embed, input_blocks, middle_block, output_blocks, out),
so an LDM checkpoint loads with a prefix split and a strict ``load_state_dict``:

    unet = UNet(UNetConfig.from_state_dict(unet_state))
    unet.load_state_dict(unet_state, strict=True)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from latentloom.diffusion.attention import CrossAttention, SpatialTransformer
from latentloom.diffusion.observe import UNetObserver
from latentloom.diffusion.unet_blocks import Downsample, ResBlock, TimestepBlock, Upsample, timestep_embedding
from latentloom.diffusion.unet_config import GROUP_NORM_GROUPS, UNetConfig


class UNet(nn.Module):
    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        channels, emb_dim = config.model_channels, config.time_embed_dim
        self.time_embed = nn.Sequential(nn.Linear(channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

        self.input_blocks = nn.ModuleList(
            [TimestepBlock([nn.Conv2d(config.in_channels, channels, kernel_size=3, padding=1)])]
        )
        skip_channels = [channels]  # channels of every input block's output, consumed by output blocks
        last_level = len(config.channel_mult) - 1
        for level, mult in enumerate(config.channel_mult):
            for _ in range(config.num_res_blocks):
                layers = [ResBlock(channels, emb_channels=emb_dim, out_channels=config.model_channels * mult)]
                channels = config.model_channels * mult
                if level in config.attention_levels:
                    layers.append(self._transformer(channels))
                self.input_blocks.append(TimestepBlock(layers))
                skip_channels.append(channels)
            if level != last_level:
                self.input_blocks.append(TimestepBlock([Downsample(channels)]))
                skip_channels.append(channels)

        self.middle_block = TimestepBlock(
            [
                ResBlock(channels, emb_channels=emb_dim, out_channels=channels),
                self._transformer(channels),
                ResBlock(channels, emb_channels=emb_dim, out_channels=channels),
            ]
        )

        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(config.channel_mult))):
            for index in range(config.num_res_blocks + 1):
                in_channels = channels + skip_channels.pop()
                channels = config.model_channels * mult
                layers = [ResBlock(in_channels, emb_channels=emb_dim, out_channels=channels)]
                if level in config.attention_levels:
                    layers.append(self._transformer(channels))
                if level and index == config.num_res_blocks:
                    layers.append(Upsample(channels))
                self.output_blocks.append(TimestepBlock(layers))

        self.out = nn.Sequential(
            nn.GroupNorm(GROUP_NORM_GROUPS, channels),
            nn.SiLU(),
            nn.Conv2d(channels, config.out_channels, kernel_size=3, padding=1),
        )
        for name, module in self.named_modules():
            if isinstance(module, CrossAttention):
                module.layer_name = name

    def _transformer(self, channels: int) -> SpatialTransformer:
        heads, dim_head = self.config.heads_for(channels)
        return SpatialTransformer(
            channels,
            heads=heads,
            dim_head=dim_head,
            depth=self.config.transformer_depth,
            context_dim=self.config.context_dim,
            linear_proj=self.config.linear_proj,
        )

    def forward(
        self, x: Tensor, timesteps: Tensor, context: Tensor, *, observer: UNetObserver | None = None
    ) -> Tensor:
        """Predict the model output for latents ``x``.

        x: (batch, in_channels, height, width), any height/width; timesteps: (batch,) or a single value,
        on the DDPM scale 0..999; context: (batch, tokens, context_dim). Computes in the weights' dtype
        and returns (batch, out_channels, height, width) in x's dtype.
        """
        dtype = self.time_embed[0].weight.dtype
        batch = x.shape[0]
        timesteps = torch.as_tensor(timesteps, device=x.device).reshape(-1)
        if timesteps.shape[0] == 1:
            timesteps = timesteps.expand(batch)
        if timesteps.shape[0] != batch or context.shape[0] != batch:
            raise ValueError(
                f"UNet: batch sizes differ: x {batch}, timesteps {timesteps.shape[0]}, "
                f"context {context.shape[0]}"
            )
        emb = self.time_embed(timestep_embedding(timesteps, self.config.model_channels).to(dtype))
        context = context.to(dtype)

        h = x.to(dtype)
        skips = []
        for index, block in enumerate(self.input_blocks):
            h = block(h, emb, context, observer=observer)
            skips.append(h)
            if observer is not None:
                observer.block_output(f"input_blocks.{index}", h)

        h = self.middle_block(h, emb, context, observer=observer)
        if observer is not None:
            observer.block_output("middle_block", h)

        for index, block in enumerate(self.output_blocks):
            skip = skips.pop()
            if observer is not None:
                source, target = f"input_blocks.{len(skips)}", f"output_blocks.{index}"
                observer.skip(source=source, target=target, tensor=skip)
            h = torch.cat([h, skip], dim=1)
            upsample_size = tuple(skips[-1].shape[-2:]) if skips else None
            h = block(h, emb, context, observer=observer, upsample_size=upsample_size)
            if observer is not None:
                observer.block_output(f"output_blocks.{index}", h)

        return self.out(h).to(x.dtype)
