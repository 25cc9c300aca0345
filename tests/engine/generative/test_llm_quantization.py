import importlib.util

import numpy as np
import pytest
import torch

from engine.generative.errors import QuantizationUnavailableError
from engine.generative.loading import load_causal_lm
from engine.generative.prompts import SAMPLE_TEXT, encode_text
from engine.generative.quantization import (
    perplexity,
    quantize_weights,
    quantize_with_fidelity,
)

needs_bitsandbytes = pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None,
                                        reason="bitsandbytes is not installed")


def linear_types(model):
    return {type(m).__name__ for m in model.modules() if "Linear" in type(m).__name__}


def test_int8_dynamic_quantizes_a_copy_and_reports_perplexity(tiny_llama):
    # execute
    quantized, report = quantize_with_fidelity(tiny_llama, "int8-dynamic")
    # assert
    assert report.linear_layers_quantized == 2 * 7  # q, k, v, o, gate, up, down in each of 2 layers
    assert "Linear" in linear_types(quantized.model) and len(linear_types(quantized.model)) == 2  # lm_head kept
    assert linear_types(tiny_llama.model) == {"Linear"}  # the original is untouched
    assert report.weight_bytes_after < report.weight_bytes_before
    assert report.perplexity_before.tokenization == "tokenizer.json"
    assert report.perplexity_before.tokens_scored == report.perplexity_after.tokens_scored > 100
    assert abs(report.perplexity_increase) < 0.05  # int8 weights barely move a random model's predictions
    assert quantized.quantization["scheme"] == "int8-dynamic"


@needs_bitsandbytes
def test_nf4_quantizes_every_linear_but_the_head(tiny_llama):
    quantized, report = quantize_with_fidelity(tiny_llama, "nf4")
    assert linear_types(quantized.model) == {"Linear4bit", "Linear"}
    assert report.weight_bytes_after < report.weight_bytes_before
    assert np.isfinite(report.perplexity_after.value) and abs(report.perplexity_increase) < 0.2


def test_int8_dynamic_needs_float32_on_the_cpu(tiny_llama_dir):
    lm = load_causal_lm(tiny_llama_dir, dtype="bfloat16")
    with pytest.raises(QuantizationUnavailableError, match="needs a float32 model"):
        quantize_weights(lm, "int8-dynamic")
    with pytest.raises(QuantizationUnavailableError, match="unknown scheme"):
        quantize_weights(lm, "int2")


def test_perplexity_of_a_random_model_is_near_its_vocabulary(tiny_gpt2):
    # setup: the GPT-2 test model has no tokenizer, so the text is scored byte by byte
    ids, source = encode_text(SAMPLE_TEXT, tiny_gpt2.folder.path, tiny_gpt2.vocab_size)
    # execute
    result = perplexity(tiny_gpt2, token_ids=ids)
    # assert
    assert source == "bytes" and ids.size == len(SAMPLE_TEXT.encode())
    assert result.tokens_scored == ids.size - 1
    assert 100 < result.value < 5 * tiny_gpt2.vocab_size  # random weights: close to uniform over 512 ids


def test_perplexity_matches_a_direct_computation(tiny_llama):
    ids = np.arange(3, 40, dtype=np.int64)
    with torch.inference_mode():
        logits = tiny_llama.model(input_ids=torch.as_tensor(ids)[None]).logits[0, :-1].double()
    expected = torch.nn.functional.cross_entropy(logits, torch.as_tensor(ids[1:])).exp().item()
    assert perplexity(tiny_llama, token_ids=ids).value == pytest.approx(expected, rel=1e-9)
