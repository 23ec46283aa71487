"""CLIP's byte-level BPE tokenizer (the text side of Stable Diffusion 1.x), written to match transformers.

The vocabulary and merges ship in ``data/clip/`` (see its README for where they come from). Text goes
through the same steps as transformers' ``CLIPTokenizer``, which ComfyUI uses:

1. the special tokens ``<|startoftext|>`` / ``<|endoftext|>`` are cut out of the raw text (exact case);
2. each remaining piece is cleaned: Unicode NFC, every whitespace run becomes one space, lower case
   (character by character);
3. the cleaned text is split into words with CLIP's pattern (contractions, letter runs, single digits,
   runs of other symbols; whitespace is dropped);
4. each word's UTF-8 bytes map to printable characters, and BPE merges them, the last symbol carrying
   ``</w>``.

Difference from OpenAI's reference tokenizer: OpenAI runs ``ftfy.fix_text`` and ``html.unescape`` twice
before step 2. transformers (and so ComfyUI) does neither, so by default neither do we: ``&amp;`` stays
three tokens. ``html_unescape=True`` restores OpenAI's entity handling; ftfy's mojibake repair is not
reproduced (NFC is the part of it that matters for ordinary prompts).
"""

from __future__ import annotations

import html
import json
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import regex

START_OF_TEXT = "<|startoftext|>"
END_OF_TEXT = "<|endoftext|>"
END_OF_WORD = "</w>"

BUNDLED_VOCAB_DIR = Path(__file__).resolve().parent / "data" / "clip"

_SPECIAL_TOKEN_PATTERN = regex.compile(r"<\|startoftext\|>|<\|endoftext\|>")
_WHITESPACE_RUN = regex.compile(r"\s+")
# CLIP's word pattern minus its special-token alternatives: those are matched on the raw text instead,
# as transformers does, so a lower-cased "<|ENDOFTEXT|>" is plain symbols and letters.
_WORD_PATTERN = regex.compile(r"'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+")
_CACHE_LIMIT = 20_000


def byte_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from the 256 byte values to printable, non-space characters.

    Bytes that are already visible Latin-1 characters map to themselves; the rest (controls, space,
    soft hyphen, ...) map to code points from 256 upwards in byte order. The dict's order (visible bytes
    first, then the rest) is the order of the first 256 vocabulary ids.
    """
    visible = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    visible += range(ord("®"), ord("ÿ") + 1)
    mapping = {b: chr(b) for b in visible}
    next_code_point = 256
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(next_code_point)
            next_code_point += 1
    return mapping


def read_vocab_files(folder: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Read a Hugging Face layout (``vocab.json`` + ``merges.txt``) from ``folder``."""
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    merges = []
    for line in (folder / "merges.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("#version") or not line.strip():
            continue
        first, second = line.split(" ")
        merges.append((first, second))
    return vocab, merges


class ClipTokenizer:
    """Text → CLIP token ids (without the start/end tokens; the chunker adds those)."""

    def __init__(
        self,
        vocab: Mapping[str, int],
        merges: Sequence[tuple[str, str]],
        *,
        html_unescape: bool = False,
    ) -> None:
        self._vocab = dict(vocab)
        self._merge_ranks = {pair: rank for rank, pair in enumerate(merges)}
        self._byte_chars = byte_to_unicode()
        self._html_unescape = html_unescape
        self._cache: dict[str, tuple[int, ...]] = {}
        self.bos_id = self._vocab[START_OF_TEXT]
        self.eos_id = self._vocab[END_OF_TEXT]

    @classmethod
    def from_folder(cls, folder: Path | str, *, html_unescape: bool = False) -> ClipTokenizer:
        vocab, merges = read_vocab_files(Path(folder))
        return cls(vocab, merges, html_unescape=html_unescape)

    @classmethod
    def bundled(cls, *, html_unescape: bool = False) -> ClipTokenizer:
        """The tokenizer of SD1's text encoder, from the vocabulary shipped with the project."""
        return cls.from_folder(BUNDLED_VOCAB_DIR, html_unescape=html_unescape)

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for piece, is_special in _split_special_tokens(text):
            if is_special:
                ids.append(self._vocab[piece])
                continue
            for word in _WORD_PATTERN.findall(self._clean(piece)):
                ids.extend(self._word_ids(word))
        return ids

    def _clean(self, text: str) -> str:
        text = unicodedata.normalize("NFC", text)
        if self._html_unescape:
            # OpenAI unescapes twice so that doubly-escaped entities ("&amp;amp;") come out as text.
            text = html.unescape(html.unescape(text))
        text = _WHITESPACE_RUN.sub(" ", text)
        # Character by character, as the tokenizers library does: str.lower() would apply the Greek
        # final-sigma rule and give a different token for a word-final "Σ".
        return "".join(char.lower() for char in text)

    def _word_ids(self, word: str) -> tuple[int, ...]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        symbols = "".join(self._byte_chars[b] for b in word.encode("utf-8"))
        ids = tuple(self._vocab[part] for part in self._bpe(symbols))
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[word] = ids
        return ids

    def _bpe(self, symbols: str) -> list[str]:
        """Merge adjacent parts, always taking the best-ranked pair, until no known pair is left."""
        parts = [*symbols[:-1], symbols[-1] + END_OF_WORD]
        while len(parts) > 1:
            pairs = list(zip(parts, parts[1:], strict=False))
            best = min(pairs, key=lambda pair: self._merge_ranks.get(pair, len(self._merge_ranks)))
            if best not in self._merge_ranks:
                break
            parts = _merge_pair(parts, best)
        return parts


def _split_special_tokens(text: str) -> Iterator[tuple[str, bool]]:
    """Yield (piece, is_special_token) in order; special tokens are matched case-sensitively."""
    position = 0
    for match in _SPECIAL_TOKEN_PATTERN.finditer(text):
        if match.start() > position:
            yield text[position : match.start()], False
        yield match.group(), True
        position = match.end()
    if position < len(text):
        yield text[position:], False


def _merge_pair(parts: list[str], pair: tuple[str, str]) -> list[str]:
    """Replace every non-overlapping occurrence of ``pair``, left to right, by its concatenation."""
    merged: list[str] = []
    index = 0
    while index < len(parts):
        if index + 1 < len(parts) and (parts[index], parts[index + 1]) == pair:
            merged.append(parts[index] + parts[index + 1])
            index += 2
        else:
            merged.append(parts[index])
            index += 1
    return merged
