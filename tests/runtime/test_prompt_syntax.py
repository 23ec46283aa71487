"""ComfyUI's weighting syntax, embedding references and 77-token chunking, case by case.

Expected values are worked out by hand from ComfyUI's comfy/sd1_clip.py (parse_parentheses,
token_weights, escape_important, SDTokenizer.tokenize_with_weights).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors.torch
import torch

from latentloom.runtime.clip_tokenizer import ClipTokenizer
from latentloom.runtime.embeddings import EmbeddingLibrary
from latentloom.runtime.prompt_syntax import (
    PromptSegment,
    WeightedToken,
    chunk_token_groups,
    parse_weighted_prompt,
    split_embedding_references,
    tokenize_prompt,
)

BOS, EOS = 49406, 49407
WIDTH = 8


@pytest.fixture(scope="module")
def tokenizer() -> ClipTokenizer:
    return ClipTokenizer.bundled()


def segments(text: str) -> list[tuple[str, float]]:
    return [(s.text, s.weight) for s in parse_weighted_prompt(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a cat", [("a cat", 1.0)]),
        ("", []),
        ("()", []),
        ("(cat)", [("cat", 1.1)]),
        ("((cat))", [("cat", 1.1 * 1.1)]),
        ("(cat:1.3)", [("cat", 1.3)]),
        ("(cat: 0.5 )", [("cat", 0.5)]),
        ("((cat:1.5))", [("cat", 1.5)]),  # an explicit weight replaces the outer 1.1
        ("((cat):1.5)", [("cat", 1.5 * 1.1)]),
        ("a (b (c:0.5) d) e", [("a ", 1.0), ("b ", 1.1), ("c", 0.5), (" d", 1.1), (" e", 1.0)]),
        ("(a)(b:0.9)", [("a", 1.1), ("b", 0.9)]),
        ("(a:b)", [("a:b", 1.1)]),  # not a number: the colon stays
        ("(:1.2)", [(":1.2", 1.1)]),  # a colon at the start is never a weight
        ("(a:1.2:1.3)", [("a:1.2", 1.3)]),  # the last colon wins
        ("\\(cat\\)", [("(cat)", 1.0)]),
        ("(a \\(b\\):1.2)", [("a (b)", 1.2)]),
        ("(cat", [("(cat", 1.0)]),  # unclosed: literal
        ("a (b", [("a ", 1.0), ("(b", 1.0)]),
        ("cat)", [("cat)", 1.0)]),  # stray close: literal
        ("a) (b) c", [("a) (b) c", 1.0)]),  # depth went negative, so (b) is literal too
        ("(a))(b)", [("a", 1.1), (")(b)", 1.0)]),
    ],
)
def test_weights_follow_comfyui(text: str, expected: list[tuple[str, float]]) -> None:
    got = segments(text)
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert [w for _, w in got] == pytest.approx([w for _, w in expected])


def test_segments_are_values() -> None:
    assert parse_weighted_prompt("(x:2)") == [PromptSegment("x", 2.0)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a embedding:foo b", ["a", "embedding:foo b"]),
        ("embedding:x\nembedding:y", ["embedding:x", "embedding:y"]),
        ("myembedding:x a,embedding:y", ["myembedding:x a,embedding:y"]),
        ("plain text", ["plain text"]),
    ],
)
def test_embedding_references_split_after_space_or_newline(text: str, expected: list[str]) -> None:
    assert split_embedding_references(text) == expected


def ids_of(chunk: list[WeightedToken]) -> list[int]:
    return [t.token for t in chunk]


def test_recorded_comfyui_prompts_give_the_recorded_chunk(tokenizer: ClipTokenizer, shared_dir: Path) -> None:
    recorded = json.loads((shared_dir / "sd15_sampling_reference.json").read_text())["tokens"]
    for case in recorded.values():
        chunks = tokenize_prompt(case["text"], tokenizer).chunks
        assert len(chunks) == case["chunks"]
        assert ids_of(chunks[0]) == case["ids"]
        assert all(t.weight == 1.0 for t in chunks[0])


def test_empty_prompt_is_start_end_and_end_padding(tokenizer: ClipTokenizer) -> None:
    (chunk,) = tokenize_prompt("", tokenizer).chunks
    assert ids_of(chunk) == [BOS] + [EOS] * 76


def test_weights_land_on_the_tokens_of_their_run(tokenizer: ClipTokenizer) -> None:
    (chunk,) = tokenize_prompt("a (red cat:1.3), dog", tokenizer).chunks
    words = tokenizer.encode("a") + tokenizer.encode("red cat") + tokenizer.encode(", dog")
    assert ids_of(chunk)[1:6] == words
    assert [t.weight for t in chunk[:7]] == [1.0, 1.0, 1.3, 1.3, 1.0, 1.0, 1.0]


def test_long_run_is_split_exactly_at_75_tokens(tokenizer: ClipTokenizer) -> None:
    words = tokenizer.encode("cat " * 100)
    assert len(words) == 100
    chunks = tokenize_prompt("cat " * 100, tokenizer).chunks
    assert [len(c) for c in chunks] == [77, 77]
    assert ids_of(chunks[0]) == [BOS, *words[:75], EOS]
    assert ids_of(chunks[1]) == [BOS, *words[75:], EOS] + [EOS] * 50


def test_short_run_that_does_not_fit_moves_whole_to_the_next_chunk(tokenizer: ClipTokenizer) -> None:
    chunks = tokenize_prompt("cat " * 74 + "(red dog:1.2)", tokenizer).chunks
    assert ids_of(chunks[0]) == [BOS, *tokenizer.encode("cat " * 74), EOS, EOS]
    assert ids_of(chunks[1])[:4] == [BOS, *tokenizer.encode("red dog"), EOS]
    assert [t.weight for t in chunks[1][:4]] == [1.0, 1.2, 1.2, 1.0]


def test_groups_of_eight_or_more_are_split_and_shorter_ones_are_not() -> None:
    def group(n: int, token: int) -> list[WeightedToken]:
        return [WeightedToken(token, 1.0)] * n

    kept = chunk_token_groups([group(70, 1), group(7, 2)], bos=BOS, eos=EOS, pad=EOS)
    assert ids_of(kept[0]) == [BOS] + [1] * 70 + [EOS] * 6
    assert ids_of(kept[1])[:9] == [BOS] + [2] * 7 + [EOS]

    split = chunk_token_groups([group(70, 1), group(8, 2)], bos=BOS, eos=EOS, pad=EOS)
    assert ids_of(split[0]) == [BOS] + [1] * 70 + [2] * 5 + [EOS]
    assert ids_of(split[1])[:5] == [BOS, 2, 2, 2, EOS]


def test_every_chunk_has_the_chunk_length() -> None:
    groups = [[WeightedToken(7, 1.0)] * n for n in (3, 40, 9, 2, 75, 1, 80)]
    chunks = chunk_token_groups(groups, bos=BOS, eos=EOS, pad=EOS, chunk_length=20)
    assert all(len(c) == 20 and c[0].token == BOS for c in chunks)
    body = [t.token for c in chunks for t in c if t.token not in (BOS, EOS)]
    assert len(body) == sum((3, 40, 9, 2, 75, 1, 80))


@pytest.fixture
def library(tmp_path: Path) -> EmbeddingLibrary:
    style = torch.arange(2 * WIDTH, dtype=torch.float32).reshape(2, WIDTH)
    safetensors.torch.save_file({"emb_params": style}, tmp_path / "style.safetensors")
    safetensors.torch.save_file({"emb_params": torch.ones(9, WIDTH)}, tmp_path / "big.safetensors")
    return EmbeddingLibrary([tmp_path])


def test_embedding_vectors_take_token_positions(tokenizer: ClipTokenizer, library: EmbeddingLibrary) -> None:
    prompt = tokenize_prompt("a embedding:style cat", tokenizer, embeddings=library, embedding_width=WIDTH)
    chunk = prompt.chunks[0]
    assert prompt.warnings == []
    assert chunk[1].token == tokenizer.encode("a")[0]
    assert torch.equal(torch.stack([chunk[2].token, chunk[3].token]), library.load("style", width=WIDTH))
    assert ids_of(chunk[4:6]) == [*tokenizer.encode("cat"), EOS]


def test_embedding_takes_the_weight_of_its_run(tokenizer: ClipTokenizer, library: EmbeddingLibrary) -> None:
    prompt = tokenize_prompt("(embedding:style:1.2)", tokenizer, embeddings=library, embedding_width=WIDTH)
    chunk = prompt.chunks[0]
    assert [t.weight for t in chunk[:4]] == [1.0, 1.2, 1.2, 1.0]


def test_trailing_comma_after_an_embedding_name_stays_text(
    tokenizer: ClipTokenizer, library: EmbeddingLibrary
) -> None:
    prompt = tokenize_prompt("embedding:style, cat", tokenizer, embeddings=library, embedding_width=WIDTH)
    assert prompt.warnings == []
    assert ids_of(prompt.chunks[0][3:6]) == [*tokenizer.encode(", cat"), EOS]


def test_missing_embedding_is_left_out_with_a_warning(
    tokenizer: ClipTokenizer, library: EmbeddingLibrary
) -> None:
    prompt = tokenize_prompt("a embedding:nowhere cat", tokenizer, embeddings=library, embedding_width=WIDTH)
    assert ids_of(prompt.chunks[0][:4]) == [BOS, *tokenizer.encode("a cat"), EOS]
    assert len(prompt.warnings) == 1 and "'nowhere'" in prompt.warnings[0]


def test_embedding_of_the_wrong_width_is_left_out_with_a_warning(
    tokenizer: ClipTokenizer, library: EmbeddingLibrary
) -> None:
    prompt = tokenize_prompt("embedding:style", tokenizer, embeddings=library, embedding_width=WIDTH * 2)
    assert ids_of(prompt.chunks[0][:2]) == [BOS, EOS]
    assert "width 16" in prompt.warnings[0]


def test_without_a_library_embedding_references_are_text(tokenizer: ClipTokenizer) -> None:
    chunk = tokenize_prompt("embedding:style", tokenizer).chunks[0]
    body = tokenizer.encode("embedding:style")
    assert ids_of(chunk[: len(body) + 2]) == [BOS, *body, EOS]


def test_embedding_vectors_count_as_tokens_when_chunking(
    tokenizer: ClipTokenizer, library: EmbeddingLibrary
) -> None:
    text = "cat " * 70 + "embedding:big"
    chunks = tokenize_prompt(text, tokenizer, embeddings=library, embedding_width=WIDTH).chunks
    vector_positions = [
        (i, j) for i, chunk in enumerate(chunks) for j, t in enumerate(chunk) if not isinstance(t.token, int)
    ]
    # Nine vectors are a large group: five fill the first chunk, four open the second.
    assert vector_positions == [(0, j) for j in range(71, 76)] + [(1, j) for j in range(1, 5)]
