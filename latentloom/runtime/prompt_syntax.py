"""ComfyUI's prompt syntax, and the cut of a tokenized prompt into CLIP-sized chunks.

- ``(text)`` multiplies the weight of ``text`` by 1.1; nesting multiplies again: ``((text))`` is 1.21.
- ``(text:1.3)`` sets the weight to 1.3, replacing (not multiplying) the weight of the groups around it.
  A suffix after the last ``:`` that is not a number leaves the colon in the text and gives 1.1.
- ``\\(`` and ``\\)`` are literal parentheses. Unbalanced parentheses stay in the text as ComfyUI leaves
  them: an unclosed ``(`` is literal up to the end, a stray ``)`` makes the rest of its run literal.
- ``embedding:name`` (at the start of a weighted run or after a space/newline) puts a textual-inversion
  embedding's vectors in the prompt; a missing one is left out with a warning, as ComfyUI does.

Every weighted run (and every embedding) is one *group* of tokens. Chunks hold 75 tokens between the
start and end tokens and are padded with the end token to 77; a group of fewer than 8 tokens that does
not fit in the current chunk moves whole to the next one, a longer group is split where the chunk ends.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import regex

from latentloom.runtime.embeddings import EmbeddingError, EmbeddingLibrary, EmbeddingNotFound

if TYPE_CHECKING:
    import torch

    from latentloom.runtime.clip_tokenizer import ClipTokenizer

logger = logging.getLogger(__name__)

EMPHASIS = 1.1
EMBEDDING_PREFIX = "embedding:"
CHUNK_LENGTH = 77
KEEP_TOGETHER_BELOW = 8  # groups shorter than this are never split across chunks

# Escaped parentheses hide behind control characters while the groups are parsed.
_ESCAPES = (("\\)", "\0\1"), ("\\(", "\0\2"))
_EMBEDDING_BOUNDARY = regex.compile(r"[ \n](?=embedding:)")


@dataclass(frozen=True)
class PromptSegment:
    text: str
    weight: float


class WeightedToken(NamedTuple):
    token: int | torch.Tensor  # a vocabulary id, or one textual-inversion vector [width]
    weight: float


@dataclass(frozen=True)
class TokenizedPrompt:
    chunks: list[list[WeightedToken]]  # each exactly chunk_length long, start and end tokens included
    warnings: list[str] = field(default_factory=list)  # embeddings that were left out, and why


def parse_weighted_prompt(text: str) -> list[PromptSegment]:
    """The prompt as runs of text with their weights, in order (``"a (b:1.2)"`` → ``a `` 1.0, ``b`` 1.2)."""
    for escaped, placeholder in _ESCAPES:
        text = text.replace(escaped, placeholder)
    segments = []
    for piece, weight in _weigh(text, 1.0):
        for escaped, placeholder in _ESCAPES:
            piece = piece.replace(placeholder, escaped[1])
        segments.append(PromptSegment(piece, weight))
    return segments


def _weigh(text: str, weight: float) -> list[tuple[str, float]]:
    weighted = []
    for piece in _split_top_level_groups(text):
        if len(piece) < 2 or piece[0] != "(" or piece[-1] != ")":
            weighted.append((piece, weight))
            continue
        inner, inner_weight = piece[1:-1], weight * EMPHASIS
        colon = inner.rfind(":")
        if colon > 0:
            explicit = _parse_weight(inner[colon + 1 :])
            if explicit is not None:
                inner, inner_weight = inner[:colon], explicit
        weighted.extend(_weigh(inner, inner_weight))
    return weighted


def _split_top_level_groups(text: str) -> list[str]:
    """Cut ``text`` into plain runs and top-level ``(...)`` groups, keeping ComfyUI's handling of
    unbalanced parentheses (a ``)`` at depth 0 drives the depth negative and is kept as text)."""
    pieces, current, depth = [], "", 0
    for char in text:
        if char == "(" and depth == 0:
            if current:
                pieces.append(current)
            current = char
            depth = 1
        elif char == "(":
            current += char
            depth += 1
        elif char == ")" and depth == 1:
            pieces.append(current + char)
            current, depth = "", 0
        elif char == ")":
            current += char
            depth -= 1
        else:
            current += char
    if current:
        pieces.append(current)
    return pieces


def _parse_weight(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def split_embedding_references(text: str) -> list[str]:
    """Cut a run before each ``embedding:`` that follows a space or newline (the separator is dropped)."""
    return [piece for piece in _EMBEDDING_BOUNDARY.split(text) if piece]


def tokenize_prompt(
    text: str,
    tokenizer: ClipTokenizer,
    *,
    embeddings: EmbeddingLibrary | None = None,
    embedding_width: int = 768,
    chunk_length: int = CHUNK_LENGTH,
) -> TokenizedPrompt:
    """Weighted tokens of ``text`` cut into chunks. Without a library, ``embedding:x`` is plain text."""
    groups: list[list[WeightedToken]] = []
    warnings: list[str] = []
    for segment in parse_weighted_prompt(text):
        for piece in split_embedding_references(segment.text):
            if embeddings is not None and piece.startswith(EMBEDDING_PREFIX):
                vectors, piece, warning = _resolve_embedding(
                    piece[len(EMBEDDING_PREFIX) :], embeddings, width=embedding_width
                )
                if warning is not None:
                    logger.warning("%s", warning)
                    warnings.append(warning)
                if vectors is not None:
                    groups.append([WeightedToken(vector, segment.weight) for vector in vectors])
            groups.append([WeightedToken(token_id, segment.weight) for token_id in tokenizer.encode(piece)])
    chunks = chunk_token_groups(
        groups, bos=tokenizer.bos_id, eos=tokenizer.eos_id, pad=tokenizer.eos_id, chunk_length=chunk_length
    )
    return TokenizedPrompt(chunks, warnings)


def _resolve_embedding(
    reference: str, library: EmbeddingLibrary, *, width: int
) -> tuple[torch.Tensor | None, str, str | None]:
    """(vectors or None, text left after the name, warning or None) for the text after ``embedding:``.

    The name ends at the first whitespace. As in ComfyUI, a name that is not found is tried again
    without its trailing commas ("embedding:style, cat"), and the commas go back into the text.
    """
    words = reference.split(maxsplit=1)
    if not words:
        return None, "", f"'{EMBEDDING_PREFIX}' is not followed by a name; it was left out of the prompt"
    name, rest = words[0], words[1] if len(words) > 1 else ""
    stripped = name.rstrip(",")
    try:
        return library.load(name, width=width), rest, None
    except EmbeddingNotFound as missing:
        if stripped == name or not stripped:
            return None, rest, f"{missing}; it was left out of the prompt"
    except EmbeddingError as unusable:
        return None, rest, f"{unusable}; it was left out of the prompt"
    rest = f"{name[len(stripped) :]} {rest}"
    try:
        return library.load(stripped, width=width), rest, None
    except EmbeddingError as unusable:
        return None, rest, f"{unusable}; it was left out of the prompt"


def chunk_token_groups(
    groups: Sequence[Sequence[WeightedToken]],
    *,
    bos: int,
    eos: int,
    pad: int,
    chunk_length: int = CHUNK_LENGTH,
) -> list[list[WeightedToken]]:
    """Lay groups of tokens into chunks of ``chunk_length``: start token, tokens, end token, padding.

    A group that does not fit in what is left of a chunk closes it; a group shorter than
    KEEP_TOGETHER_BELOW then starts the next chunk, a longer one fills the chunk and carries on.
    """
    room = chunk_length - 2
    chunks: list[list[WeightedToken]] = []
    body: list[WeightedToken] = []
    for group in groups:
        pending = list(group)
        splittable = len(pending) >= KEEP_TOGETHER_BELOW or len(pending) > room
        while len(body) + len(pending) > room:
            if splittable:
                free = room - len(body)
                body.extend(pending[:free])
                pending = pending[free:]
            chunks.append(_close_chunk(body, bos=bos, eos=eos, pad=pad, chunk_length=chunk_length))
            body = []
        body.extend(pending)
    chunks.append(_close_chunk(body, bos=bos, eos=eos, pad=pad, chunk_length=chunk_length))
    return chunks


def _close_chunk(
    body: list[WeightedToken], *, bos: int, eos: int, pad: int, chunk_length: int
) -> list[WeightedToken]:
    padding = [WeightedToken(pad, 1.0)] * (chunk_length - len(body) - 2)
    return [WeightedToken(bos, 1.0), *body, WeightedToken(eos, 1.0), *padding]
