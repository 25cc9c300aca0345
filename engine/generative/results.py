"""Per-request timings of a generation run and the figures derived from them.

Every clock reading is kept (perf_counter_ns), so a saved run can be re-summarized
or compared later: a request's start, the moment each of its tokens was known,
and the duration of each decode step. Summaries use `engine.measure.statistics`, which
marks percentiles computed from too few samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.latency_stats import LatencyStats
from engine.generative.memory import PeakMemory

PREFILL, DECODE = 0, 1  # sample kinds in `token_samples`


@dataclass(frozen=True)
class RequestRecord:
    """One request: `batch_size` rows of `prompt_tokens` ids, each extended by `len(token_times_ns)` tokens.

    `start_ns` is when the request began to be served, or, in a served stream, when it was scheduled to arrive;
    so TTFT includes any time it waited in the queue. `token_times_ns[0]` is the first token (end of prefill);
    `decode_starts_ns[i]` and `decode_latencies_ns[i]` time the step that produced token i + 1.
    """

    index: int
    batch_size: int
    prompt_tokens: int
    start_ns: int
    prefill_start_ns: int
    token_times_ns: np.ndarray
    decode_starts_ns: np.ndarray
    decode_latencies_ns: np.ndarray
    output_ids: tuple[tuple[int, ...], ...]  # batch_size rows of generated ids
    complete: bool = True  # False when the run was cancelled while this request was being served

    @property
    def new_tokens(self) -> int:
        return int(self.token_times_ns.size)

    @property
    def ttft_ns(self) -> int:
        return int(self.token_times_ns[0] - self.start_ns)

    @property
    def prefill_ns(self) -> int:
        return int(self.token_times_ns[0] - self.prefill_start_ns)

    @property
    def queue_ns(self) -> int:
        return int(self.prefill_start_ns - self.start_ns)

    @property
    def total_ns(self) -> int:
        return int(self.token_times_ns[-1] - self.start_ns)

    @property
    def tpot_ns(self) -> float | None:
        """Mean time per output token after the first, as seen by the requester (gaps included)."""
        if self.new_tokens < 2:
            return None
        return float(self.token_times_ns[-1] - self.token_times_ns[0]) / (self.new_tokens - 1)

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "batch_size": self.batch_size,
            "prompt_tokens": self.prompt_tokens,
            "new_tokens": self.new_tokens,
            "complete": self.complete,
            "queue_ms": self.queue_ns / 1e6,
            "ttft_ms": self.ttft_ns / 1e6,
            "total_ms": self.total_ns / 1e6,
            "tpot_ms": None if self.tpot_ns is None else self.tpot_ns / 1e6,
        }


@dataclass(frozen=True)
class GenerationSummary:
    ttft: LatencyStats  # one sample per request
    tpot: LatencyStats  # one sample per decode step, pooled over requests (inter-token latency)
    prefill_tokens_per_s: float | None  # prompt tokens / time spent in prefill
    decode_tokens_per_s: float | None  # tokens from decode steps / time spent in decode steps
    output_tokens_per_s: float | None  # every generated token / wall time of the timed loop
    generated_tokens: int

    def to_dict(self) -> dict:
        return {
            "ttft_ms": self.ttft.latency_dict(),
            "tpot_ms": self.tpot.latency_dict(),
            "unreliable_percentiles": {"ttft": list(self.ttft.unreliable_percentiles),
                                       "tpot": list(self.tpot.unreliable_percentiles)},
            "prefill_tokens_per_s": self.prefill_tokens_per_s,
            "decode_tokens_per_s": self.decode_tokens_per_s,
            "output_tokens_per_s": self.output_tokens_per_s,
            "generated_tokens": self.generated_tokens,
        }


def summarize_requests(records: list[RequestRecord], wall_ns: int) -> GenerationSummary:
    done = [r for r in records if r.complete]
    ttft = np.array([r.ttft_ns for r in done], dtype=np.int64)
    steps = _concat([r.decode_latencies_ns for r in done])
    prefill_ns = sum(r.prefill_ns for r in done)
    prompt_tokens = sum(r.batch_size * r.prompt_tokens for r in done)
    decode_ns = int(steps.sum())
    decode_tokens = sum(r.batch_size * r.decode_latencies_ns.size for r in done)
    generated = sum(r.batch_size * r.new_tokens for r in done)
    return GenerationSummary(
        ttft=LatencyStats.of(ttft, wall_ns=wall_ns),
        tpot=LatencyStats.of(steps, wall_ns=decode_ns),
        prefill_tokens_per_s=prompt_tokens / (prefill_ns / 1e9) if prefill_ns > 0 else None,
        decode_tokens_per_s=decode_tokens / (decode_ns / 1e9) if decode_ns > 0 else None,
        output_tokens_per_s=generated / (wall_ns / 1e9) if wall_ns > 0 and generated else None,
        generated_tokens=generated,
    )


@dataclass(frozen=True)
class TokenSamples:
    """Every timed step of a run in time order, ready to store: one row per prefill or decode step.

    `tokens` is how many tokens the step produced (the batch size); `kind` is PREFILL (0) or DECODE (1).
    """

    timestamps_ns: np.ndarray
    latencies_ns: np.ndarray
    tokens: np.ndarray
    kind: np.ndarray
    request: np.ndarray

    def __len__(self) -> int:
        return int(self.timestamps_ns.size)


def token_samples(records: list[RequestRecord]) -> TokenSamples:
    parts = []
    for r in records:
        count = r.decode_latencies_ns.size
        parts.append((
            np.concatenate([[r.prefill_start_ns], r.decode_starts_ns]).astype(np.int64),
            np.concatenate([[r.prefill_ns], r.decode_latencies_ns]).astype(np.int64),
            np.full(count + 1, r.batch_size, dtype=np.int64),
            np.concatenate([[PREFILL], np.full(count, DECODE)]).astype(np.int8),
            np.full(count + 1, r.index, dtype=np.int64),
        ))
    if not parts:
        empty = np.empty(0, dtype=np.int64)
        return TokenSamples(empty, empty, empty, empty.astype(np.int8), empty)
    columns = [np.concatenate(column) for column in zip(*parts)]
    order = np.argsort(columns[0], kind="stable")
    return TokenSamples(*(column[order] for column in columns))


@dataclass(frozen=True)
class GenerationResult:
    status: str  # "completed" or "cancelled"
    settings: dict
    model: dict  # CausalLM.describe() or the ONNX path's description
    cold_start: dict  # load_ms, first_request_ms (the first warm-up or timed request, never counted)
    requests: list[RequestRecord]
    summary: GenerationSummary
    memory: PeakMemory
    loop_start_ns: int
    loop_end_ns: int
    environment: dict = field(default_factory=dict)

    def token_samples(self) -> TokenSamples:
        return token_samples(self.requests)

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "settings": self.settings,
            "model": self.model,
            "cold_start_ms": self.cold_start,
            "summary": self.summary.to_dict(),
            "memory": self.memory.to_dict(),
            "requests": [r.to_dict() for r in self.requests],
            "environment": self.environment,
        }


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays).astype(np.int64) if arrays else np.empty(0, dtype=np.int64)
