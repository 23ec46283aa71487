"""Our CLIP BPE tokenizer against transformers' CLIPTokenizer reading the same shipped files, against
ComfyUI's recorded token ids, and the shipped vocabulary against the generator's layout."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import CLIPTokenizer

from latentloom.runtime.clip_tokenizer import (
    BUNDLED_VOCAB_DIR,
    END_OF_TEXT,
    START_OF_TEXT,
    ClipTokenizer,
    byte_to_unicode,
    read_vocab_files,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

TRICKY_PROMPTS = [
    "",
    "   ",
    "a photograph of an astronaut riding a horse",
    "Hello, World!!! ... ?! -- a/b\\c @home #tag $5 50% ^_^ ~tilde~ `code` |pipe|",
    "it's don't they're we've I'm you'll he'd IT'S Don'T ''''s ''t 'twas",
    "3.14159 1234567 1st 2nd 007 ١٢٣ Ⅻ ½ ²",
    "café naïve Ångström résumé Straße İstanbul ΣΊΣΥΦΟΣ ǅ ﬁ",
    "cafe\u0301 decomposed e\u0301 and q\u0303 x\u0301\u0301",
    "🐱‍👤 😀😀 🎉 ❤️ 👍🏽 🇯🇵",
    "日本語のテキスト 中文提示词 한국어 ไทย العربية עברית",
    "&amp; &lt;b&gt; &#39; &quot; &amp;amp; &nbsp;",
    "a  b\n\nc\t\td \r\n e\u00a0f\u3000g\u2028h\u200bi \x85 j",
    "\x00\x01 control\x07chars\x7f",
    "supercalifragilisticexpialidocious" * 4,
    "pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
    "(word:1.3) ((nested)) [a|b] {c} \\(escaped\\) <lora:name:0.8> embedding:style, (a:b)",
    "<|endoftext|> A<|startoftext|>b <|ENDOFTEXT|> <|endoftext",
    "masterpiece, best quality, 8k, ultra-detailed, (((intricate))), AI-generated",
]


@pytest.fixture(scope="module")
def ours() -> ClipTokenizer:
    return ClipTokenizer.bundled()


@pytest.fixture(scope="module")
def reference() -> CLIPTokenizer:
    return CLIPTokenizer.from_pretrained(str(BUNDLED_VOCAB_DIR))


@pytest.mark.parametrize("prompt", TRICKY_PROMPTS)
def test_matches_transformers_token_for_token(
    ours: ClipTokenizer, reference: CLIPTokenizer, prompt: str
) -> None:
    expected = reference(prompt)["input_ids"]
    assert [ours.bos_id, *ours.encode(prompt), ours.eos_id] == expected


# Letters, digits, symbols, accents, CJK, emoji, joiners and odd whitespace, mixed at random.
PROMPT_ALPHABET = st.sampled_from(
    list(" abcxyzABCXYZ0123456789'\",.:;!?()[]{}<>|\\/-_=+*&#@$%^~`")
    + list("\n\t\r\u00a0\u3000\u2028\u200d\u0301\ufe0f")
    + list("éèÀÖßøœñÅ日本語中文한국ΣςİΑ😀🎉❤")
)


@settings(max_examples=150, deadline=None)
@given(st.lists(PROMPT_ALPHABET, max_size=40).map("".join))
def test_random_mixed_text_matches_transformers(
    ours: ClipTokenizer, reference: CLIPTokenizer, prompt: str
) -> None:
    assert ours.encode(prompt) == reference(prompt)["input_ids"][1:-1]


def test_comfyui_reference_prompts_give_the_recorded_ids(ours: ClipTokenizer, shared_dir: Path) -> None:
    recorded = json.loads((shared_dir / "sd15_sampling_reference.json").read_text())["tokens"]
    for case in recorded.values():
        ids = [ours.bos_id, *ours.encode(case["text"]), ours.eos_id]
        ids += [ours.eos_id] * (77 - len(ids))
        assert ids == case["ids"], case["text"]


def test_special_token_ids_are_sd1s(ours: ClipTokenizer) -> None:
    assert (ours.bos_id, ours.eos_id, ours.vocab_size) == (49406, 49407, 49408)


def test_repeated_words_come_from_the_cache_unchanged(ours: ClipTokenizer) -> None:
    first = ours.encode("astronaut astronaut")
    assert first[:1] == first[1:] == ours.encode("astronaut")


def test_html_unescape_option_reads_entities_as_openai_clip_does() -> None:
    openai_like = ClipTokenizer.bundled(html_unescape=True)
    assert openai_like.encode("fish &amp; chips") == openai_like.encode("fish & chips")
    # Unescaped twice, as OpenAI's basic_clean does.
    assert openai_like.encode("&amp;lt;") == openai_like.encode("<")
    assert ClipTokenizer.bundled().encode("&amp;") != ClipTokenizer.bundled().encode("&")


def _load_generator():
    script = REPO_ROOT / "scripts" / "generate_clip_vocab.py"
    spec = importlib.util.spec_from_file_location("generate_clip_vocab", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_orders_ids_as_openai_clip() -> None:
    generator = _load_generator()
    bpe_text = "bpe_simple_vocab_16e6.txt#version: 0.2\ni n\nt h\nth e</w>\nunused merge\n"
    vocab, merges = generator.build_vocab(bpe_text, merge_count=3)
    symbols = list(byte_to_unicode().values())
    assert merges == ["i n", "t h", "th e</w>"]
    assert list(vocab)[:512] == symbols + [s + "</w>" for s in symbols]
    assert list(vocab)[512:] == ["in", "th", "the</w>", START_OF_TEXT, END_OF_TEXT]
    assert list(vocab.values()) == list(range(517))


def test_shipped_files_have_the_generators_layout() -> None:
    vocab, merges = read_vocab_files(BUNDLED_VOCAB_DIR)
    tokens = sorted(vocab, key=vocab.__getitem__)
    symbols = list(byte_to_unicode().values())
    assert len(merges) == 48894 and len(tokens) == 49408
    assert tokens[:512] == symbols + [s + "</w>" for s in symbols]
    assert tokens[512:-2] == [first + second for first, second in merges]
    assert tokens[-2:] == [START_OF_TEXT, END_OF_TEXT]
    assert vocab["a</w>"] == 320  # as in OpenAI's and ComfyUI's vocabulary
