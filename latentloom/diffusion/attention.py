"""The UNet's transformer parts, with the attribute names of the CompVis ``ldm/modules/attention.py``.

SpatialTransformer -> transformer_blocks.K (BasicTransformerBlock) -> attn1 (self), attn2 (cross),
ff.net.0.proj (GEGLU), ff.net.2, norm1/2/3. All attention runs through
``torch.nn.functional.scaled_dot_product_attention`` unless a UNetObserver replaces it for a layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentloom.diffusion.observe import AttentionCall, UNetObserver


def _split_heads(x: Tensor, heads: int) -> Tensor:
    # (batch, tokens, heads * dim_head) -> (batch, heads, tokens, dim_head), a view
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def multihead_attention(q: Tensor, k: Tensor, v: Tensor, *, heads: int) -> Tensor:
    """softmax(q kᵀ / sqrt(dim_head)) v per head, through SDPA.

    q: (batch, query_tokens, heads * dim_head); k, v: (batch, key_tokens, heads * dim_head).
    Returns (batch, query_tokens, heads * dim_head).
    """
    q_heads, k_heads, v_heads = (_split_heads(t, heads) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q_heads, k_heads, v_heads)
    return out.transpose(1, 2).flatten(2)  # (batch, heads, tokens, dim_head) -> (batch, tokens, inner)


def attention_probabilities(q: Tensor, k: Tensor, heads: int) -> Tensor:
    """The attention weights softmax(q kᵀ / sqrt(dim_head)) per head, in float32.

    q: (batch, query_tokens, heads * dim_head); k: (batch, key_tokens, heads * dim_head).
    Returns (batch, heads, query_tokens, key_tokens); each row sums to 1.
    """
    q_heads = _split_heads(q.float(), heads)
    k_heads = _split_heads(k.float(), heads)
    scale = q_heads.shape[-1] ** -0.5
    return torch.softmax((q_heads @ k_heads.transpose(-1, -2)) * scale, dim=-1)


class CrossAttention(nn.Module):
    """Multi-head attention; self-attention when called without a context."""

    def __init__(self, query_dim: int, *, heads: int, dim_head: int, context_dim: int | None = None) -> None:
        super().__init__()
        inner_dim = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner_dim, bias=False)
        self.to_k = nn.Linear(context_dim or query_dim, inner_dim, bias=False)
        self.to_v = nn.Linear(context_dim or query_dim, inner_dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner_dim, query_dim))  # index 1 was Dropout in training
        # Qualified name reported to observers; the UNet sets it once after building itself.
        self.layer_name = "attn"

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        spatial: tuple[int, int],
        observer: UNetObserver | None = None,
    ) -> Tensor:
        source = x if context is None else context
        q, k, v = self.to_q(x), self.to_k(source), self.to_v(source)
        out = None
        if observer is not None:
            call = AttentionCall(
                layer=self.layer_name,
                cross=context is not None,
                q=q,
                k=k,
                v=v,
                heads=self.heads,
                spatial=spatial,
            )
            out = observer.attention(call)
        if out is None:
            out = multihead_attention(q, k, v, heads=self.heads)
        return self.to_out(out)


class GEGLU(nn.Module):
    """Gated GELU: one projection to twice the width, half of it gates the other half."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: Tensor) -> Tensor:
        hidden, gate = self.proj(x).chunk(2, dim=-1)
        return hidden * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, *, mult: int = 4) -> None:
        super().__init__()
        # net.1 was Dropout in training; Identity keeps net.2's index.
        self.net = nn.Sequential(GEGLU(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    """Pre-norm self-attention, cross-attention to the context, gated feed-forward; each residual."""

    def __init__(self, dim: int, *, heads: int, dim_head: int, context_dim: int) -> None:
        super().__init__()
        self.attn1 = CrossAttention(dim, heads=heads, dim_head=dim_head)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, heads=heads, dim_head=dim_head, context_dim=context_dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(
        self, x: Tensor, context: Tensor, *, spatial: tuple[int, int], observer: UNetObserver | None = None
    ) -> Tensor:
        x = self.attn1(self.norm1(x), spatial=spatial, observer=observer) + x
        x = self.attn2(self.norm2(x), context, spatial=spatial, observer=observer) + x
        return self.ff(self.norm3(x)) + x


class SpatialTransformer(nn.Module):
    """Image features -> tokens -> transformer blocks -> image features, added to the input.

    proj_in/proj_out are 1x1 convolutions in SD1 checkpoints and Linear layers in SD2 ones; both are the
    same matrix applied to each pixel's channel vector, so forward uses them as matrices on the tokens.
    """

    def __init__(
        self, channels: int, *, heads: int, dim_head: int, depth: int, context_dim: int, linear_proj: bool
    ) -> None:
        super().__init__()
        inner_dim = heads * dim_head
        self.norm = nn.GroupNorm(32, channels, eps=1e-6)
        if linear_proj:
            self.proj_in: nn.Module = nn.Linear(channels, inner_dim)
            self.proj_out: nn.Module = nn.Linear(inner_dim, channels)
        else:
            self.proj_in = nn.Conv2d(channels, inner_dim, kernel_size=1)
            self.proj_out = nn.Conv2d(inner_dim, channels, kernel_size=1)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(inner_dim, heads=heads, dim_head=dim_head, context_dim=context_dim)
            for _ in range(depth)
        )

    def forward(self, x: Tensor, context: Tensor, *, observer: UNetObserver | None = None) -> Tensor:
        _, _, height, width = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (batch, channels, h, w) -> (batch, h*w, channels)
        h = F.linear(tokens, self.proj_in.weight.flatten(1), self.proj_in.bias)  # (batch, h*w, inner)
        for block in self.transformer_blocks:
            h = block(h, context, spatial=(height, width), observer=observer)
        h = F.linear(h, self.proj_out.weight.flatten(1), self.proj_out.bias)  # (batch, h*w, channels)
        return x + h.transpose(1, 2).unflatten(2, (height, width))  # back to (batch, channels, h, w)
