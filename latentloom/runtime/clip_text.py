"""SD1's CLIP text encoder: transformers' CLIPTextModel with the checkpoint's weights, encoding prompts
the way ComfyUI does.

- The architecture is read from the tensor shapes (vocabulary, width, layers, MLP width, positions); the
  head count is width / 64, as in every CLIP text tower SD uses.
- Each 77-token chunk is encoded on its own; chunks are concatenated along the token axis.
- ``clip_skip`` n takes the output of the n-th layer from the end (1 = last) and applies the final layer
  norm to it. ComfyUI's CLIPSetLastLayer writes the same choice as -n.
- Weighted tokens move away from the empty prompt's encoding at the same position:
  ``z = (z - z_empty) * w + z_empty`` where ``w != 1`` (ComfyUI's encode_token_weights).
- The pooled output is the final-layer-normed state at the first end token of the first chunk.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence

import torch
from transformers import CLIPTextConfig, CLIPTextModel

from latentloom.api.errors import LatentLoomError
from latentloom.runtime.clip_tokenizer import ClipTokenizer
from latentloom.runtime.embeddings import EmbeddingLibrary
from latentloom.runtime.prompt_syntax import (
    TokenizedPrompt,
    WeightedToken,
    chunk_token_groups,
    tokenize_prompt,
)

CHECKPOINT_PREFIX = "text_model."
POSITION_IDS_KEY = "text_model.embeddings.position_ids"
HEAD_WIDTH = 64
_LAYER_INDEX = re.compile(r"^text_model\.encoder\.layers\.(\d+)\.")


class TextEncoderWeightsError(LatentLoomError):
    """The text encoder's tensors do not form the expected model; every offending key is named."""

    def __init__(
        self,
        *,
        missing: Sequence[str] = (),
        unexpected: Sequence[str] = (),
        mismatched: Sequence[str] = (),
        reason: str = "",
    ) -> None:
        parts = [reason] if reason else []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
            if keys:
                parts.append(f"{label}: {', '.join(keys)}")
        super().__init__("text encoder weights: " + "; ".join(parts))
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)


class ClipSkipOutOfRange(LatentLoomError, ValueError):
    """clip_skip must pick one of the encoder's layers."""


def clip_skip_from_last_layer(stop_at_clip_layer: int) -> int:
    """ComfyUI's CLIPSetLastLayer value (-1 = last layer, -2 = penultimate, ...) as our clip_skip."""
    if stop_at_clip_layer > -1:
        raise ClipSkipOutOfRange(f"stop_at_clip_layer must be -1 or lower, got {stop_at_clip_layer}")
    return -stop_at_clip_layer


def config_from_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    *,
    bos_id: int,
    eos_id: int,
    hidden_act: str = "quick_gelu",
    head_width: int = HEAD_WIDTH,
) -> CLIPTextConfig:
    """The CLIPTextConfig that the shapes of ``text_model.*`` tensors describe."""
    shape_keys = (
        "text_model.embeddings.token_embedding.weight",
        "text_model.embeddings.position_embedding.weight",
        "text_model.encoder.layers.0.mlp.fc1.weight",
    )
    absent = [key for key in shape_keys if key not in state_dict]
    if absent:
        raise TextEncoderWeightsError(missing=absent, reason="cannot read the architecture")
    vocab_size, width = state_dict[shape_keys[0]].shape
    positions = state_dict[shape_keys[1]].shape[0]
    intermediate = state_dict[shape_keys[2]].shape[0]
    if width % head_width:
        raise TextEncoderWeightsError(reason=f"width {width} is not a multiple of head width {head_width}")
    layers = 1 + max(int(m.group(1)) for key in state_dict if (m := _LAYER_INDEX.match(key)))
    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=width,
        intermediate_size=intermediate,
        projection_dim=width,
        num_hidden_layers=layers,
        num_attention_heads=width // head_width,
        max_position_embeddings=positions,
        hidden_act=hidden_act,
        layer_norm_eps=1e-5,
        bos_token_id=bos_id,
        # The real end-token id makes transformers pool at the first end token, as ComfyUI does.
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )


class ClipTextEncoder:
    """Prompt → (cond [1, 77·chunks, width], pooled [1, width]), both float32 on the model's device."""

    def __init__(self, model: CLIPTextModel, tokenizer: ClipTokenizer) -> None:
        if tokenizer.vocab_size > model.config.vocab_size:
            raise TextEncoderWeightsError(
                reason=f"the tokenizer has {tokenizer.vocab_size} tokens, the token embedding "
                f"{model.config.vocab_size} rows"
            )
        self.model = model
        self.tokenizer = tokenizer

    @classmethod
    def from_state_dict(
        cls,
        state_dict: Mapping[str, torch.Tensor],
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        tokenizer: ClipTokenizer | None = None,
        hidden_act: str = "quick_gelu",
        head_width: int = HEAD_WIDTH,
    ) -> ClipTextEncoder:
        """Build from ``text_model.*`` tensors (the checkpoint's ``cond_stage_model.transformer.`` stripped).

        The model is made on the meta device and takes the given tensors as its parameters, so no
        random weights are ever allocated. Loading is strict; ``position_ids`` is optional and ignored
        (some merged checkpoints carry corrupted ones), positions are always 0..n-1.
        """
        tokenizer = tokenizer or ClipTokenizer.bundled()
        config = config_from_state_dict(
            state_dict,
            bos_id=tokenizer.bos_id,
            eos_id=tokenizer.eos_id,
            hidden_act=hidden_act,
            head_width=head_width,
        )
        with torch.device("meta"):
            model = CLIPTextModel(config)
        weights = _match_model_keys(state_dict, model)
        model.load_state_dict(
            {key: tensor.to(device=device, dtype=dtype) for key, tensor in weights.items()},
            strict=True,
            assign=True,
        )
        _reset_position_ids(model, device=device)
        model.eval().requires_grad_(False)
        return cls(model, tokenizer)

    @property
    def width(self) -> int:
        return self.model.config.hidden_size

    @property
    def num_layers(self) -> int:
        return self.model.config.num_hidden_layers

    @property
    def chunk_length(self) -> int:
        return self.model.config.max_position_embeddings

    def tokenize(self, prompt: str, *, embeddings: EmbeddingLibrary | None = None) -> TokenizedPrompt:
        return tokenize_prompt(
            prompt,
            self.tokenizer,
            embeddings=embeddings,
            embedding_width=self.width,
            chunk_length=self.chunk_length,
        )

    def encode(
        self, prompt: str, *, clip_skip: int = 1, embeddings: EmbeddingLibrary | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a prompt; embeddings that could not be used are logged (``tokenize`` lists them)."""
        return self.encode_tokens(self.tokenize(prompt, embeddings=embeddings), clip_skip=clip_skip)

    def encode_tokens(
        self, tokens: TokenizedPrompt, *, clip_skip: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not 1 <= clip_skip <= self.num_layers:
            raise ClipSkipOutOfRange(f"clip_skip must be between 1 and {self.num_layers}, got {clip_skip}")
        chunks = tokens.chunks
        weights = torch.tensor([[token.weight for token in chunk] for chunk in chunks], dtype=torch.float32)
        weighted = bool((weights != 1.0).any())
        # The empty prompt's encoding is the reference that weights move away from.
        rows = [*chunks, self._empty_chunk()] if weighted else list(chunks)
        hidden, pooled = self._encode_rows(rows, clip_skip=clip_skip)
        cond = hidden[: len(chunks)]
        if weighted:
            empty = hidden[len(chunks)]
            scale = weights.to(cond.device).unsqueeze(-1)
            cond = torch.where(scale != 1.0, (cond - empty) * scale + empty, cond)
        return cond.reshape(1, -1, self.width), pooled[:1]

    def _empty_chunk(self) -> list[WeightedToken]:
        bos, eos = self.tokenizer.bos_id, self.tokenizer.eos_id
        return chunk_token_groups([], bos=bos, eos=eos, pad=eos, chunk_length=self.chunk_length)[0]

    def _encode_rows(
        self, rows: Sequence[Sequence[WeightedToken]], *, clip_skip: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states [rows, length, width] at the chosen layer and pooled states [rows, width]."""
        device = self.model.get_input_embeddings().weight.device
        # A position that carries an embedding vector gets a stand-in id whose embedding is then replaced
        # (any id but the end token, which marks where pooling reads).
        ids = [[t.token if isinstance(t.token, int) else self.tokenizer.bos_id for t in row] for row in rows]
        vectors = {
            (r, c): t.token
            for r, row in enumerate(rows)
            for c, t in enumerate(row)
            if not isinstance(t.token, int)
        }
        with torch.no_grad(), _vectors_injected(self.model, vectors):
            out = self.model(input_ids=torch.tensor(ids, device=device), output_hidden_states=clip_skip > 1)
            if clip_skip == 1:
                hidden = out.last_hidden_state
            else:
                hidden = _text_transformer(self.model).final_layer_norm(out.hidden_states[-clip_skip])
        return hidden.float(), out.pooler_output.float()


@contextlib.contextmanager
def _vectors_injected(
    model: CLIPTextModel, vectors: Mapping[tuple[int, int], torch.Tensor]
) -> Iterator[None]:
    """While open, the token embedding's output carries the given vectors at their (row, column)."""
    if not vectors:
        yield
        return
    rows, columns = (torch.tensor(index) for index in zip(*vectors, strict=True))
    values = torch.stack(list(vectors.values()))

    def replace(_module: torch.nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
        at = (rows.to(output.device), columns.to(output.device))
        return output.index_put(at, values.to(device=output.device, dtype=output.dtype))

    handle = model.get_input_embeddings().register_forward_hook(replace)
    try:
        yield
    finally:
        handle.remove()


def _text_transformer(model: CLIPTextModel) -> torch.nn.Module:
    # transformers < 5 nests the transformer under `text_model`; 5.x flattened it into the model.
    return getattr(model, "text_model", model)


def _match_model_keys(
    state_dict: Mapping[str, torch.Tensor], model: CLIPTextModel
) -> dict[str, torch.Tensor]:
    """The given tensors under the model's own names, after a strict check of names and shapes."""
    expected = model.state_dict()
    model_prefix = CHECKPOINT_PREFIX if _text_transformer(model) is not model else ""
    renamed, unexpected = {}, []
    for key, tensor in state_dict.items():
        if key == POSITION_IDS_KEY:
            continue
        name = model_prefix + key.removeprefix(CHECKPOINT_PREFIX)
        if key.startswith(CHECKPOINT_PREFIX) and name in expected:
            renamed[name] = tensor
        else:
            unexpected.append(key)
    missing = [_checkpoint_name(k, model_prefix) for k in expected if k not in renamed]
    mismatched = [
        f"{_checkpoint_name(k, model_prefix)} {tuple(t.shape)} (expected {tuple(expected[k].shape)})"
        for k, t in renamed.items()
        if t.shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        raise TextEncoderWeightsError(missing=missing, unexpected=unexpected, mismatched=mismatched)
    return renamed


def _checkpoint_name(model_key: str, model_prefix: str) -> str:
    return CHECKPOINT_PREFIX + model_key.removeprefix(model_prefix)


def _reset_position_ids(model: CLIPTextModel, *, device: torch.device | str) -> None:
    """The position_ids buffer is not in the state dict, so after a meta build it must be made here."""
    embeddings = _text_transformer(model).embeddings
    positions = model.config.max_position_embeddings
    embeddings.position_ids = torch.arange(positions, device=device).expand(1, -1)
    if torch.device(device).type == "meta":
        return  # an architecture-only build (shapes, key check) asked for meta tensors
    left_on_meta = [name for name, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if left_on_meta:
        raise TextEncoderWeightsError(missing=left_on_meta, reason="tensors left unloaded")
