import threading
from time import perf_counter_ns
from types import SimpleNamespace

import numpy as np
import pytest

from engine.errors import InputError
from engine.generative.benchmark import serve_request
from engine.generative.decoding import Decoder
from engine.generative.prompts import random_prompts
from engine.generative.scheduler import DecodeBatch, _InFlight, serve_stream
from engine.generative.serving import (
    RateSweep,
    poisson_arrivals,
    run_serving_benchmark,
    sweep_arrival_rates,
)
from engine.generative.settings import RateSweepSettings, ServingSettings


def alone(decoder, prompt, new_tokens):
    """The reference: the request served by itself, without batching."""
    record = serve_request(decoder, prompt[None, :], new_tokens=new_tokens, index=0, cancel=threading.Event())
    return list(record.output_ids[0])


@pytest.mark.parametrize("model", ["tiny_llama", "tiny_gpt2"])
def test_rows_joining_and_leaving_keep_their_own_tokens(model, request):
    # setup: prompts of different lengths join a running batch at different steps and leave when done
    lm = request.getfixturevalue(model)
    decoder = Decoder(lm)
    rng = np.random.default_rng(5)
    prompts = [rng.integers(3, 512, size=length) for length in (7, 19, 3, 11)]
    wanted = {0: 9, 1: 5, 2: 8, 3: 4}  # tokens per request
    join_at = {0: 0, 1: 0, 2: 2, 3: 3}  # decode step at which each request arrives
    batch = DecodeBatch(decoder)
    # execute
    served = {}
    step = 0
    while len(served) < len(prompts):
        for index in [i for i, at in join_at.items() if at == step]:
            batch.admit(_InFlight(index, prompts[index].size, 0, 0, 0), prompts[index])
        if batch.rows:
            batch.step()
        finished = [row for row in batch.rows if len(row.tokens) >= wanted[row.index]]
        served.update({row.index: row.tokens for row in finished})
        batch.release(finished)
        step += 1
    # assert
    for index, prompt in enumerate(prompts):
        assert served[index] == alone(decoder, prompt, wanted[index])


def test_stream_serves_every_request_in_full_and_in_order(tiny_llama):
    # setup: all arrive at once, three decode together
    decoder = Decoder(tiny_llama)
    prompts = [random_prompts(1, 6 + k, 512, seed=0, request=k)[0] for k in range(7)]
    now = perf_counter_ns()
    # execute
    records, steps = serve_stream(decoder, prompts, np.full(7, now), new_tokens=5, max_batch=3,
                                  cancel=threading.Event())
    # assert
    assert [r.index for r in records] == list(range(7))
    assert steps.batch_sizes.max() == 3
    for record, prompt in zip(records, prompts):
        assert record.complete and record.new_tokens == 5
        assert list(record.output_ids[0]) == alone(decoder, prompt, 5)
        assert record.start_ns == now and record.queue_ns >= 0 and record.ttft_ns >= record.prefill_ns > 0


def test_sequential_baseline_never_batches(tiny_llama):
    result = run_serving_benchmark(tiny_llama, ServingSettings(requests=3, prompt_tokens=6, new_tokens=4,
                                                               max_batch=1))
    assert set(result.steps.batch_sizes.tolist()) == {1}
    assert result.throughput_tokens_per_s > 0 and len(result.requests) == 3


def test_served_stream_measures_from_the_scheduled_arrival(tiny_llama):
    # setup
    settings = ServingSettings(rate_per_s=2000.0, requests=6, prompt_tokens=6, new_tokens=4, max_batch=4)
    # execute
    result = run_serving_benchmark(tiny_llama, settings)
    # assert
    offsets = [(r.start_ns - result.stream_start_ns) / 1e9 for r in result.requests]
    assert offsets == pytest.approx(result.arrivals_s.tolist(), abs=1e-9)
    assert all(r.ttft_ns >= r.queue_ns >= 0 for r in result.requests)
    assert result.ttft.count == result.tpot.count == 6
    assert result.inter_token.count == 6 * 3
    summary = result.to_dict()
    assert summary["decode_steps"] == result.steps.batch_sizes.size and summary["max_batch_reached"] >= 1
    assert result.memory.peak_rss_bytes > 0
    assert len(result.token_samples()) == 6 * 4  # per request: its prefill and 3 decode steps


def test_cancelled_stream_flags_unfinished_requests(tiny_llama, monkeypatch):
    # setup: cancel during the 8th forward pass, which is the third request's prefill
    decoder = Decoder(tiny_llama)
    cancel = threading.Event()
    calls = []
    step = decoder.step

    def counting_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 8:
            cancel.set()
        return step(*args, **kwargs)

    monkeypatch.setattr(decoder, "step", counting_step)
    prompts = [random_prompts(1, 6, 512, seed=0, request=k)[0] for k in range(4)]
    # execute
    records, _ = serve_stream(decoder, prompts, np.full(4, perf_counter_ns()), new_tokens=6, max_batch=2,
                              cancel=cancel)
    # assert: two served in full, the third stopped after at most one more step, the fourth never started
    assert [(r.index, r.complete) for r in records] == [(0, True), (1, True), (2, False)]
    assert records[2].new_tokens < 6


def test_arrivals_are_seeded_poisson():
    # execute
    first = poisson_arrivals(50.0, seed=1, count=2000)
    again = poisson_arrivals(50.0, seed=1, count=2000)
    windowed = poisson_arrivals(50.0, seed=1, duration_s=2.0)
    # assert
    assert np.array_equal(first, again) and np.all(np.diff(first) > 0)
    assert np.mean(np.diff(first)) == pytest.approx(1 / 50.0, rel=0.1)
    assert windowed.max() < 2.0 and 60 < windowed.size < 140
    assert np.array_equal(poisson_arrivals(None, seed=1, count=3), np.zeros(3))


def test_sweep_runs_each_rate(tiny_llama):
    stream = ServingSettings(requests=3, prompt_tokens=5, new_tokens=3)
    sweep = sweep_arrival_rates(tiny_llama, RateSweepSettings(rates_per_s=(500.0,), stream=stream))
    results = [*sweep.points, sweep.all_at_once]
    assert [r.settings["rate_per_s"] for r in results] == [500.0, None]


def test_the_saturation_point_is_the_all_at_once_capacity():
    # setup: 10 tokens per request served at 100 tokens/s when every request arrives at once
    settings = RateSweepSettings(rates_per_s=(5.0, 10.0, 20.0), stream=ServingSettings(new_tokens=10))

    def stream(tokens_per_s: float) -> SimpleNamespace:
        return SimpleNamespace(status="completed", requests=[], throughput_tokens_per_s=tokens_per_s)

    points = (stream(50.0), stream(95.0), stream(99.0))
    # execute
    sweep = RateSweep(settings, points, stream(100.0))
    cancelled = RateSweep(settings, points[:1], None)
    # assert
    assert sweep.saturation_rate_per_s == pytest.approx(10.0) and sweep.load(5.0) == pytest.approx(0.5)
    assert sweep.rates_beyond_saturation == [10.0, 20.0] and sweep.status == "completed"
    assert cancelled.status == "cancelled" and cancelled.saturation_rate_per_s is None
    assert cancelled.rates_beyond_saturation == []


def test_rate_sweep_settings_are_sorted_and_checked_before_any_run():
    stream = ServingSettings(rate_per_s=1.0, duration_s=2.0)
    sweep = RateSweepSettings(rates_per_s=(4.0, 1.0, 4.0), stream=stream)
    assert sweep.rates_per_s == (1.0, 4.0)
    assert sweep.stream_at(4.0).duration_s == 2.0 and sweep.stream_at(None).duration_s is None
    with pytest.raises(InputError, match="at least one rate"):
        RateSweepSettings(rates_per_s=(), stream=stream)
    with pytest.raises(InputError, match="arrival rate"):
        RateSweepSettings(rates_per_s=(1.0, 0.0), stream=stream)


def test_serving_settings_are_validated():
    with pytest.raises(InputError, match="arrival rate"):
        ServingSettings(rate_per_s=0.0)
    with pytest.raises(InputError, match="needs an arrival rate"):
        ServingSettings(duration_s=5.0)
