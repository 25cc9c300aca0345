import pytest
import torch

from engine.generative import kv_cache
from engine.generative.decoding import Decoder
from engine.generative.prefix_reuse import run_prefix_reuse_benchmark
from engine.generative.prompts import random_prompts
from engine.generative.settings import PrefixReuseSettings


@pytest.mark.parametrize("model", ["tiny_llama", "tiny_gpt2"])
def test_prefix_reuse_gives_the_same_tokens(model, request):
    # setup
    lm = request.getfixturevalue(model)
    settings = PrefixReuseSettings(shared_prefix_tokens=40, suffix_tokens=6, new_tokens=6, requests=3,
                                   warmup_requests=1)
    # execute
    result = run_prefix_reuse_benchmark(lm, settings, threads=1)
    # assert
    assert result.status == "completed"
    assert result.outputs_identical == [True, True, True]
    assert [r.prompt_tokens for r in result.without_reuse] == [46, 46, 46]
    assert [r.prompt_tokens for r in result.with_reuse] == [6, 6, 6]
    assert all(r.new_tokens == 6 for r in result.without_reuse + result.with_reuse)
    assert result.ttft_without.count == result.ttft_with.count == 3
    assert result.prefix_prefill_ms > 0 and result.ttft_speedup > 0


def test_extending_a_shared_cache_leaves_the_prefix_untouched(tiny_llama):
    # setup
    decoder = Decoder(tiny_llama)
    prefix_cache = decoder.new_cache()
    decoder.step(decoder.tensor(random_prompts(1, 20, 512, seed=0)), prefix_cache)
    prefix = kv_cache.layer_tensors(prefix_cache)
    copies = [(k.clone(), v.clone()) for k, v in prefix]
    # execute: two requests extend the same prefix, one of them as a batch of 2
    for batch in (1, 2):
        cache = kv_cache.share(tiny_llama.model.config, prefix_cache, batch_size=batch)
        decoder.step(decoder.tensor(random_prompts(batch, 5, 512, seed=1)), cache)
        assert cache.get_seq_length() == 25
    # assert
    for (keys, values), (keys_before, values_before) in zip(prefix, copies):
        assert torch.equal(keys, keys_before) and torch.equal(values, values_before)
    assert prefix_cache.get_seq_length() == 20
