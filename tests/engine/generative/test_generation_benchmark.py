import threading

import numpy as np
import pytest

from engine.errors import InputError
from engine.generative.benchmark import compare_kv_cache, run_generation_benchmark
from engine.generative.results import DECODE, PREFILL
from engine.generative.settings import GenerationSettings
from engine.measure.samples import SampleBuffer

SMALL = GenerationSettings(prompt_tokens=12, new_tokens=6, batch_size=2, requests=3, warmup_requests=1)


def test_token_counts_and_timings_are_consistent(tiny_llama):
    # execute
    result = run_generation_benchmark(tiny_llama, SMALL, threads=1)
    # assert
    assert result.status == "completed"
    assert [r.index for r in result.requests] == [0, 1, 2]  # the warm-up request is not among them
    for record in result.requests:
        assert record.complete and record.batch_size == 2 and record.prompt_tokens == 12
        assert record.new_tokens == 6
        assert record.decode_latencies_ns.size == record.decode_starts_ns.size == 6 - 1
        assert [len(row) for row in record.output_ids] == [6, 6]
        assert 0 < record.ttft_ns <= record.total_ns
        assert np.all(np.diff(record.token_times_ns) > 0)
        assert np.all(record.decode_latencies_ns > 0)
    summary = result.summary
    assert summary.generated_tokens == 3 * 2 * 6
    assert summary.ttft.count == 3 and summary.tpot.count == 3 * 5
    assert "p99" in summary.tpot.unreliable_percentiles  # 15 samples cannot give a p99
    assert summary.prefill_tokens_per_s > 0 and summary.decode_tokens_per_s > 0
    assert result.memory.peak_rss_bytes > 0
    assert result.cold_start["first_request_ms"] > 0
    assert result.environment["session"]["dtype"] == "float32"
    assert all(2 not in row for r in result.requests for row in r.output_ids)  # end-of-sequence is never chosen


def test_token_samples_hold_every_step_in_time_order(tiny_llama):
    # setup
    live = SampleBuffer()
    # execute
    result = run_generation_benchmark(tiny_llama, SMALL, samples=live)
    samples = result.token_samples()
    # assert
    assert len(samples) == 3 * 6 == len(live)
    assert np.all(np.diff(samples.timestamps_ns) >= 0)
    assert (samples.kind == PREFILL).sum() == 3 and (samples.kind == DECODE).sum() == 3 * 5
    assert set(samples.tokens.tolist()) == {2}
    starts, latencies = live.snapshot()
    assert sorted(latencies.tolist()) == sorted(samples.latencies_ns.tolist())


def test_cache_on_and_off_give_the_same_greedy_tokens(tiny_llama):
    # execute
    comparison = compare_kv_cache(tiny_llama, GenerationSettings(prompt_tokens=10, new_tokens=8, requests=2,
                                                                 warmup_requests=0))
    # assert
    assert comparison.outputs_identical is True
    on, off = comparison.with_cache.requests, comparison.without_cache.requests
    assert [r.output_ids for r in on] == [r.output_ids for r in off]
    assert comparison.decode_speedup > 0
    assert comparison.status == "completed" and comparison.requests == [*on, *off]


def test_seeded_sampling_repeats_and_differs_by_seed(tiny_llama):
    # setup
    sampling = GenerationSettings(prompt_tokens=8, new_tokens=8, requests=2, warmup_requests=0, do_sample=True,
                                  temperature=1.5, top_k=50, seed=3)
    greedy = GenerationSettings(prompt_tokens=8, new_tokens=8, requests=2, warmup_requests=0, seed=3)
    # execute
    first = run_generation_benchmark(tiny_llama, sampling)
    again = run_generation_benchmark(tiny_llama, sampling)
    argmax = run_generation_benchmark(tiny_llama, greedy)
    # assert
    assert [r.output_ids for r in first.requests] == [r.output_ids for r in again.requests]
    assert [r.output_ids for r in first.requests] != [r.output_ids for r in argmax.requests]


def test_cancel_mid_request_keeps_what_was_measured(tiny_llama):
    # setup: cancel as soon as the second timed request reports progress
    cancel = threading.Event()
    fractions = []

    def progress(fraction, message):
        fractions.append(fraction)
        if message == "request 2":
            cancel.set()

    # execute
    result = run_generation_benchmark(tiny_llama, SMALL, cancel=cancel, progress=progress)
    # assert
    assert result.status == "cancelled"
    assert [r.complete for r in result.requests] == [True, False]
    assert result.requests[1].new_tokens < 6
    assert result.summary.ttft.count == 1  # the unfinished request is kept but not summarized
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_settings_are_validated():
    with pytest.raises(InputError, match="new tokens"):
        GenerationSettings(new_tokens=0)
    with pytest.raises(InputError, match="temperature"):
        GenerationSettings(do_sample=True, temperature=0.0)
    with pytest.raises(InputError, match="batch size"):
        GenerationSettings(batch_size=True)


def test_prompt_beyond_the_context_is_refused(tiny_llama):
    with pytest.raises(InputError, match="context"):
        run_generation_benchmark(tiny_llama, GenerationSettings(prompt_tokens=1020, new_tokens=10))
