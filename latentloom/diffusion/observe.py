"""What a caller may watch or replace inside one UNet forward pass.

The observer travels through ``UNet.forward(..., observer=...)``; the model keeps no reference to it, so
any other caller of the same model sees plain behaviour. Subclass ``UNetObserver`` and override only the
methods you need: the defaults do nothing and let the model compute attention itself.

Tensor layout handed to ``attention``: q, k and v are ``(batch, tokens, heads * dim_head)``, the layout
the to_q/to_k/to_v projections produce; the returned tensor must have q's shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class AttentionCall:
    """One attention computation inside a SpatialTransformer."""

    layer: str  # qualified module name, e.g. "input_blocks.1.1.transformer_blocks.0.attn2"
    cross: bool  # True when keys/values come from the text context (attn2), False for self-attention
    q: Tensor  # (batch, query_tokens, heads * dim_head)
    k: Tensor  # (batch, key_tokens, heads * dim_head)
    v: Tensor  # (batch, key_tokens, heads * dim_head)
    heads: int
    spatial: tuple[int, int]  # (height, width) of the query token grid: query_tokens == height * width


class UNetObserver:
    """Hooks called during one UNet forward; every default is a no-op."""

    def block_output(self, name: str, output: Tensor) -> None:
        """Called after each block with its output: "input_blocks.N", "middle_block", "output_blocks.N"."""

    def skip(self, *, source: str, target: str, tensor: Tensor) -> None:
        """Called when the skip tensor saved from block ``source`` is concatenated into block ``target``."""

    def attention(self, call: AttentionCall) -> Tensor | None:
        """Return the attention output ``(batch, query_tokens, heads * dim_head)`` to replace the
        model's own computation, or None to let the model compute it (after recording what you need,
        e.g. ``attention_probabilities(call.q, call.k, call.heads)``)."""
        return None
