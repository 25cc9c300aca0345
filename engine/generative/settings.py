"""What a generation benchmark is asked to do, checked before any model is loaded.

Plain frozen dataclasses without torch, so the CLI can validate its arguments and
a saved run can store them (`to_dict`) without paying for the heavy imports.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from engine.errors import InputError

DTYPES = ("float32", "bfloat16", "float16")


def _at_least(name: str, value: int, lowest: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
        raise InputError(f"{name} must be a whole number ≥ {lowest}, got {value!r}")


def _finite_at_least(name: str, value: float, lowest: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= lowest):
        raise InputError(f"{name} must be a finite number ≥ {lowest}, got {value!r}")


@dataclass(frozen=True)
class GenerationSettings:
    """One request = a batch of `batch_size` prompts of `prompt_tokens` tokens, each extended by `new_tokens`.

    Requests run one after another; each gets a fresh seeded prompt, so the inputs vary as real traffic does.
    Generation ignores end-of-sequence tokens: every request produces exactly `new_tokens` tokens, which keeps
    runs comparable (the usual rule of LLM benchmarks). The timed part stops when both `requests` and
    `min_duration_s` are reached, or on cancel. `do_sample` switches greedy decoding to seeded sampling.
    """

    prompt_tokens: int = 128
    new_tokens: int = 64
    batch_size: int = 1
    requests: int = 5
    min_duration_s: float = 0.0
    warmup_requests: int = 1
    use_cache: bool = True
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0  # 0 = the whole vocabulary
    seed: int = 0

    def __post_init__(self) -> None:
        _at_least("prompt length", self.prompt_tokens, 1)
        _at_least("new tokens", self.new_tokens, 1)
        _at_least("batch size", self.batch_size, 1)
        _at_least("requests", self.requests, 1)
        _at_least("warm-up requests", self.warmup_requests, 0)
        _at_least("top-k", self.top_k, 0)
        _finite_at_least("minimum duration", self.min_duration_s, 0.0)
        if self.do_sample and not (math.isfinite(self.temperature) and self.temperature > 0):
            raise InputError(f"temperature must be a positive number, got {self.temperature!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PrefixReuseSettings:
    """Requests share a system prompt of `shared_prefix_tokens` and add `suffix_tokens` of their own.

    Without reuse each request prefills the whole prompt; with reuse the shared part's KV cache is computed
    once and every request prefills only its suffix on top of it.
    """

    shared_prefix_tokens: int = 256
    suffix_tokens: int = 32
    new_tokens: int = 8
    requests: int = 5
    warmup_requests: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        _at_least("shared prefix length", self.shared_prefix_tokens, 1)
        _at_least("suffix length", self.suffix_tokens, 1)
        _at_least("new tokens", self.new_tokens, 1)
        _at_least("requests", self.requests, 1)
        _at_least("warm-up requests", self.warmup_requests, 0)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ServingSettings:
    """An open-loop stream of requests (MLPerf's server scenario) served with batched decode steps.

    Arrivals are a seeded Poisson process at `rate_per_s`; `rate_per_s=None` makes every request arrive at
    once, which measures throughput at saturation. With `duration_s` the stream holds the arrivals that fall
    in that window (at least one), otherwise exactly `requests` arrivals. At most `max_batch` requests decode
    together; `max_batch=1` serves them one at a time, the sequential baseline.
    """

    rate_per_s: float | None = None
    requests: int = 16
    duration_s: float | None = None
    prompt_tokens: int = 64
    new_tokens: int = 32
    max_batch: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rate_per_s is not None:
            _finite_at_least("arrival rate", self.rate_per_s, 0.0)
            if self.rate_per_s <= 0:
                raise InputError(f"arrival rate must be above 0 requests/s, got {self.rate_per_s!r}")
        if self.duration_s is not None:
            _finite_at_least("duration", self.duration_s, 0.0)
            if self.rate_per_s is None:
                raise InputError("a stream duration needs an arrival rate (--rate); without one all requests "
                                 "arrive at once and the count is --requests")
        _at_least("requests", self.requests, 1)
        _at_least("prompt length", self.prompt_tokens, 1)
        _at_least("new tokens", self.new_tokens, 1)
        _at_least("maximum batch", self.max_batch, 1)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RateSweepSettings:
    """Serving streams at each arrival rate in `rates_per_s`, then one with every request arriving at once.

    Every stream shares `stream`'s settings but its rate. The all-at-once stream measures the server's capacity,
    the rate at which it saturates; it holds `stream.requests` arrivals, the others `stream.duration_s` worth
    when a duration is given.
    """

    rates_per_s: tuple[float, ...]
    stream: ServingSettings

    def __post_init__(self) -> None:
        if not self.rates_per_s:
            raise InputError("an arrival-rate sweep needs at least one rate")
        object.__setattr__(self, "rates_per_s", tuple(sorted(set(self.rates_per_s))))
        for rate in (*self.rates_per_s, None):
            self.stream_at(rate)  # each stream's settings are checked now, before any model is loaded

    def stream_at(self, rate_per_s: float | None) -> ServingSettings:
        """The settings of the stream at `rate_per_s`, or of the all-at-once stream for None."""
        return replace(self.stream, rate_per_s=rate_per_s,
                       duration_s=self.stream.duration_s if rate_per_s is not None else None)

    def to_dict(self) -> dict:
        shared = {key: value for key, value in self.stream.to_dict().items() if key != "rate_per_s"}
        return {"rates_per_s": list(self.rates_per_s), **shared}
