"""ClipTextEncoder against a transformers CLIPTextModel built directly with the same small random weights
(hidden 32, 2 layers, 2 heads), tokenized independently by transformers' CLIPTokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors.torch
import torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from latentloom.runtime.clip_text import (
    ClipSkipOutOfRange,
    ClipTextEncoder,
    TextEncoderWeightsError,
    clip_skip_from_last_layer,
    config_from_state_dict,
)
from latentloom.runtime.clip_tokenizer import BUNDLED_VOCAB_DIR
from latentloom.runtime.embeddings import EmbeddingLibrary

BOS, EOS = 49406, 49407
TINY = CLIPTextConfig(
    vocab_size=49408,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    bos_token_id=BOS,
    eos_token_id=EOS,
    pad_token_id=EOS,
)
TINY_HEAD_WIDTH = 16
CHECKPOINT_TEXT_PREFIX = "cond_stage_model.transformer."


@pytest.fixture(scope="module")
def reference() -> CLIPTextModel:
    torch.manual_seed(0)
    model = CLIPTextModel(TINY).eval()
    with torch.no_grad():  # the default init leaves LayerNorms at 1/0; vary them so they are tested too
        for name, param in model.named_parameters():
            if "layer_norm" in name:
                param.add_(torch.randn_like(param) * 0.1)
    return model


def checkpoint_style(model: CLIPTextModel) -> dict[str, torch.Tensor]:
    """The model's tensors under the names a checkpoint uses once the loader strips its prefix."""
    weights = {
        "text_model." + k.removeprefix("text_model."): v.clone() for k, v in model.state_dict().items()
    }
    weights["text_model.embeddings.position_ids"] = torch.arange(77).unsqueeze(0)
    return weights


@pytest.fixture(scope="module")
def encoder(reference: CLIPTextModel) -> ClipTextEncoder:
    return ClipTextEncoder.from_state_dict(checkpoint_style(reference), head_width=TINY_HEAD_WIDTH)


@pytest.fixture(scope="module")
def hf_tokenizer() -> CLIPTokenizer:
    return CLIPTokenizer.from_pretrained(str(BUNDLED_VOCAB_DIR))


def padded_ids(hf_tokenizer: CLIPTokenizer, text: str) -> torch.Tensor:
    return hf_tokenizer(text, padding="max_length", max_length=77, return_tensors="pt")["input_ids"]


def run_reference(model: CLIPTextModel, ids: torch.Tensor):
    with torch.no_grad():
        return model(input_ids=ids, output_hidden_states=True)


@pytest.mark.parametrize(
    ("prompt", "plain_text"),
    [
        ("a photograph of an astronaut riding a horse", "a photograph of an astronaut riding a horse"),
        ("", ""),
        ("blurry, \\(escaped\\) parens, 3.5% & more", "blurry, (escaped) parens, 3.5% & more"),
    ],
)
def test_unweighted_prompt_equals_transformers_exactly(
    encoder: ClipTextEncoder,
    reference: CLIPTextModel,
    hf_tokenizer: CLIPTokenizer,
    prompt: str,
    plain_text: str,
) -> None:
    cond, pooled = encoder.encode(prompt)
    expected = run_reference(reference, padded_ids(hf_tokenizer, plain_text))
    assert cond.shape == (1, 77, 32) and pooled.shape == (1, 32)
    assert torch.equal(cond, expected.last_hidden_state)
    assert torch.equal(pooled, expected.pooler_output)


def test_pooled_output_reads_the_first_end_token(encoder: ClipTextEncoder) -> None:
    cond, pooled = encoder.encode("a cat")
    # [BOS, a, cat, EOS, ...]: the first end token sits at position 3.
    assert torch.equal(pooled[0], cond[0, 3])


def test_weights_move_tokens_away_from_the_empty_prompt(
    encoder: ClipTextEncoder, reference: CLIPTextModel, hf_tokenizer: CLIPTokenizer
) -> None:
    cond, _ = encoder.encode("a (red:1.5) cat, ((dog))")
    unweighted = run_reference(reference, padded_ids(hf_tokenizer, "a red cat, dog")).last_hidden_state[0]
    empty = run_reference(reference, padded_ids(hf_tokenizer, "")).last_hidden_state[0]
    weights = torch.ones(77)
    weights[2], weights[5] = 1.5, 1.1 * 1.1  # [BOS, a, red, cat, ",", dog, EOS...]
    expected = unweighted.clone()
    for position in (2, 5):
        w = weights[position]
        expected[position] = (unweighted[position] - empty[position]) * w + empty[position]
    torch.testing.assert_close(cond[0], expected, rtol=0, atol=1e-6)
    untouched = weights == 1.0
    torch.testing.assert_close(cond[0, untouched], unweighted[untouched], rtol=0, atol=1e-6)


def test_long_prompt_chunks_are_encoded_independently_and_concatenated(
    encoder: ClipTextEncoder, reference: CLIPTextModel
) -> None:
    words = encoder.tokenizer.encode("cat " * 100)
    cond, pooled = encoder.encode("cat " * 100)
    first = torch.tensor([[BOS, *words[:75], EOS]])
    second = torch.tensor([[BOS, *words[75:], EOS] + [EOS] * 50])
    expected_first, expected_second = run_reference(reference, first), run_reference(reference, second)
    assert cond.shape == (1, 154, 32)
    torch.testing.assert_close(cond[:, :77], expected_first.last_hidden_state, rtol=0, atol=1e-6)
    torch.testing.assert_close(cond[:, 77:], expected_second.last_hidden_state, rtol=0, atol=1e-6)
    torch.testing.assert_close(pooled, expected_first.pooler_output, rtol=0, atol=1e-6)


def test_clip_skip_takes_the_layer_from_the_end_with_final_layer_norm(
    encoder: ClipTextEncoder, reference: CLIPTextModel, hf_tokenizer: CLIPTokenizer
) -> None:
    expected = run_reference(reference, padded_ids(hf_tokenizer, "a cat"))
    penultimate = reference.final_layer_norm(expected.hidden_states[-2])
    cond, pooled = encoder.encode("a cat", clip_skip=2)
    torch.testing.assert_close(cond, penultimate, rtol=0, atol=1e-6)
    assert not torch.allclose(cond, expected.last_hidden_state)
    # As in ComfyUI, the pooled output always comes from the last layer.
    torch.testing.assert_close(pooled, expected.pooler_output, rtol=0, atol=1e-6)


def test_clip_skip_must_name_an_existing_layer(encoder: ClipTextEncoder) -> None:
    with pytest.raises(ClipSkipOutOfRange, match="between 1 and 2, got 3"):
        encoder.encode("a cat", clip_skip=3)
    with pytest.raises(ClipSkipOutOfRange):
        encoder.encode("a cat", clip_skip=0)


def test_comfyui_last_layer_maps_to_clip_skip() -> None:
    assert [clip_skip_from_last_layer(layer) for layer in (-1, -2, -12)] == [1, 2, 12]
    with pytest.raises(ClipSkipOutOfRange):
        clip_skip_from_last_layer(0)


def test_embedding_vectors_replace_their_token_embeddings(
    encoder: ClipTextEncoder, reference: CLIPTextModel, tmp_path: Path
) -> None:
    vectors = torch.randn(2, 32, generator=torch.Generator().manual_seed(3))
    safetensors.torch.save_file({"emb_params": vectors}, tmp_path / "style.safetensors")
    cond, pooled = encoder.encode("a embedding:style cat", embeddings=EmbeddingLibrary([tmp_path]))
    # ComfyUI's way, as an independent reference: extra vocabulary rows that hold the vectors.
    extended = CLIPTextModel(TINY).eval()
    extended.load_state_dict(reference.state_dict())
    rows = torch.cat([reference.get_input_embeddings().weight.detach(), vectors])
    extended.set_input_embeddings(torch.nn.Embedding.from_pretrained(rows))
    a, cat = encoder.tokenizer.encode("a")[0], encoder.tokenizer.encode("cat")[0]
    ids = torch.tensor([[BOS, a, 49408, 49409, cat] + [EOS] * 72])
    expected = run_reference(extended, ids)
    torch.testing.assert_close(cond, expected.last_hidden_state, rtol=0, atol=1e-6)
    torch.testing.assert_close(pooled, expected.pooler_output, rtol=0, atol=1e-6)


def test_unusable_embeddings_are_reported_by_tokenize(encoder: ClipTextEncoder, tmp_path: Path) -> None:
    tokens = encoder.tokenize("a embedding:absent cat", embeddings=EmbeddingLibrary([tmp_path]))
    assert len(tokens.warnings) == 1 and "'absent'" in tokens.warnings[0]
    cond, _ = encoder.encode_tokens(tokens)
    torch.testing.assert_close(cond, encoder.encode("a cat")[0], rtol=0, atol=1e-6)


def test_architecture_is_read_from_sd15_checkpoint_shapes(shared_dir: Path) -> None:
    shapes = json.loads((shared_dir / "sd15_checkpoint_keys.json").read_text())
    text_keys = {
        k.removeprefix(CHECKPOINT_TEXT_PREFIX): torch.empty(shape, device="meta")
        for k, shape in shapes.items()
        if k.startswith(CHECKPOINT_TEXT_PREFIX)
    }
    config = config_from_state_dict(text_keys, bos_id=BOS, eos_id=EOS)
    got = (
        config.vocab_size,
        config.hidden_size,
        config.num_hidden_layers,
        config.num_attention_heads,
        config.intermediate_size,
        config.max_position_embeddings,
        config.hidden_act,
    )
    assert got == (49408, 768, 12, 12, 3072, 77, "quick_gelu")
    # Every key of a real SD1.5 text encoder loads strictly (position_ids included, and ignored).
    encoder = ClipTextEncoder.from_state_dict(text_keys, device="meta")
    assert encoder.num_layers == 12 and encoder.width == 768


def test_loading_takes_the_given_tensors_without_copies(reference: CLIPTextModel) -> None:
    weights = checkpoint_style(reference)
    encoder = ClipTextEncoder.from_state_dict(weights, head_width=TINY_HEAD_WIDTH)
    given = weights["text_model.embeddings.token_embedding.weight"]
    assert encoder.model.get_input_embeddings().weight.data_ptr() == given.data_ptr()


def test_position_ids_are_optional(reference: CLIPTextModel, encoder: ClipTextEncoder) -> None:
    weights = checkpoint_style(reference)
    del weights["text_model.embeddings.position_ids"]
    without = ClipTextEncoder.from_state_dict(weights, head_width=TINY_HEAD_WIDTH)
    assert torch.equal(without.encode("a cat")[0], encoder.encode("a cat")[0])


def test_half_precision_weights_give_float32_outputs(
    reference: CLIPTextModel, encoder: ClipTextEncoder
) -> None:
    half = ClipTextEncoder.from_state_dict(checkpoint_style(reference), dtype=torch.bfloat16, head_width=16)
    assert half.model.get_input_embeddings().weight.dtype == torch.bfloat16
    cond, pooled = half.encode("a cat")
    assert cond.dtype == pooled.dtype == torch.float32
    torch.testing.assert_close(cond, encoder.encode("a cat")[0], rtol=0.05, atol=0.1)


def test_missing_unexpected_and_misshapen_keys_are_named(reference: CLIPTextModel) -> None:
    weights = checkpoint_style(reference)
    del weights["text_model.encoder.layers.1.mlp.fc2.bias"]
    weights["text_model.extra.weight"] = torch.zeros(1)
    weights["text_model.final_layer_norm.bias"] = torch.zeros(31)
    with pytest.raises(TextEncoderWeightsError) as raised:
        ClipTextEncoder.from_state_dict(weights, head_width=TINY_HEAD_WIDTH)
    assert raised.value.missing == ["text_model.encoder.layers.1.mlp.fc2.bias"]
    assert raised.value.unexpected == ["text_model.extra.weight"]
    assert raised.value.mismatched == ["text_model.final_layer_norm.bias (31,) (expected (32,))"]


def test_keys_needed_for_the_architecture_are_named(reference: CLIPTextModel) -> None:
    weights = checkpoint_style(reference)
    del weights["text_model.embeddings.token_embedding.weight"]
    expected = "missing: text_model.embeddings.token_embedding.weight"
    with pytest.raises(TextEncoderWeightsError, match=expected):
        ClipTextEncoder.from_state_dict(weights, head_width=TINY_HEAD_WIDTH)
