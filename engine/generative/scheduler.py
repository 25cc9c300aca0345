"""A continuous-batching scheduler: requests join and leave one decode batch between steps.

Each loop iteration first admits every request whose scheduled arrival time
has passed (up to `max_batch` in flight): it is prefilled alone, which gives its
first token, and its KV cache joins the batch (`kv_cache.join_rows`). Then one
decode step runs for all requests in flight, one token each; finished requests
leave the batch. Admitting before decoding favours time to first token over the
smoothness of requests already decoding, as common LLM servers do by default.

Arrivals follow a fixed schedule (open loop): a request that arrives while the
server is busy waits, and its TTFT counts from the scheduled arrival, so a slow
server cannot hide its queue (no coordinated omission). Each row of the batch
keeps its own tokens and position ids, so a request's output does not depend on
who it shared a batch with (checked by the tests against serving it alone).

This loop is not engine.measure's timed loop: an iteration admits, steps and
releases a batch that changes as it goes, and every request keeps its own times;
waiting for the next arrival is the kernel's `wait_until`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter_ns

import numpy as np
import torch

from engine.generative import kv_cache
from engine.generative.decoding import Decoder
from engine.generative.results import RequestRecord
from engine.measure.timed_loop import wait_until


@dataclass(eq=False)  # rows are told apart by identity
class _InFlight:
    index: int
    prompt_tokens: int
    arrival_ns: int
    prefill_start_ns: int
    position: int  # the position id of the row's next input token
    tokens: list[int] = field(default_factory=list)
    token_times: list[int] = field(default_factory=list)
    step_starts: list[int] = field(default_factory=list)
    step_latencies: list[int] = field(default_factory=list)

    def record(self, complete: bool) -> RequestRecord:
        return RequestRecord(
            index=self.index,
            batch_size=1,
            prompt_tokens=self.prompt_tokens,
            start_ns=self.arrival_ns,
            prefill_start_ns=self.prefill_start_ns,
            token_times_ns=np.asarray(self.token_times, dtype=np.int64),
            decode_starts_ns=np.asarray(self.step_starts, dtype=np.int64),
            decode_latencies_ns=np.asarray(self.step_latencies, dtype=np.int64),
            output_ids=(tuple(self.tokens),),
            complete=complete,
        )


@dataclass(frozen=True)
class StepLog:
    """Every batched decode step: when it started, how long it took, how many requests it served."""

    starts_ns: np.ndarray
    latencies_ns: np.ndarray
    batch_sizes: np.ndarray


class DecodeBatch:
    """The requests in flight and their joint, left-padded KV cache."""

    def __init__(self, decoder: Decoder):
        self.decoder = decoder
        self.rows: list[_InFlight] = []
        self._tensors: kv_cache.KVTensors | None = None
        self._mask: torch.Tensor | None = None
        self._cache = None  # a DynamicCache over _tensors, rebuilt only when rows join or leave

    def __len__(self) -> int:
        return len(self.rows)

    def admit(self, row: _InFlight, prompt: np.ndarray) -> None:
        """Prefills the prompt alone (its first token) and joins its cache to the batch."""
        decoder = self.decoder
        cache = decoder.new_cache()
        row.prefill_start_ns = perf_counter_ns()
        first = decoder.step(decoder.tensor(prompt[None, :]), cache)[0]
        decoder.synchronize()
        row.token_times.append(perf_counter_ns())
        row.tokens.append(first)
        row.position = int(prompt.size)
        ones = torch.ones((1, int(prompt.size)), dtype=torch.long, device=decoder.device)
        self._tensors, self._mask = kv_cache.join_rows(self._current(), self._mask, kv_cache.layer_tensors(cache), ones)
        self._cache = None
        self.rows.append(row)

    def step(self) -> tuple[int, int]:
        """One decode step for every row; returns its (start, latency) in ns."""
        decoder = self.decoder
        begin = perf_counter_ns()
        if self._cache is None:
            self._cache = kv_cache.cache_from_tensors(decoder.model.config, self._tensors)
        rows = self.rows
        ids = decoder.tensor([[row.tokens[-1]] for row in rows])
        positions = decoder.tensor([[row.position] for row in rows])
        self._mask = torch.cat([self._mask, self._mask.new_ones((len(rows), 1))], dim=1)
        tokens = decoder.step(ids, self._cache, attention_mask=self._mask, position_ids=positions)
        decoder.synchronize()
        end = perf_counter_ns()
        for row, token in zip(rows, tokens):
            row.tokens.append(token)
            row.token_times.append(end)
            row.step_starts.append(begin)
            row.step_latencies.append(end - begin)
            row.position += 1
        return begin, end - begin

    def release(self, finished: list[_InFlight]) -> None:
        """Drops finished rows and the padding columns only they needed."""
        if not finished:
            return
        keep = [i for i, row in enumerate(self.rows) if row not in finished]
        self.rows = [self.rows[i] for i in keep]
        if not keep:
            self._tensors = self._mask = self._cache = None
            return
        self._tensors, self._mask = kv_cache.keep_rows(self._current(), self._mask, keep)
        self._cache = None

    def _current(self) -> kv_cache.KVTensors | None:
        """The batch's KV tensors as of now: decode steps extend the cache object, not `_tensors`."""
        return kv_cache.layer_tensors(self._cache) if self._cache is not None else self._tensors


def serve_stream(decoder: Decoder, prompts: list[np.ndarray], arrivals_ns: np.ndarray, *, new_tokens: int,
                 max_batch: int, cancel: threading.Event,
                 on_progress: Callable[[int, int], None] | None = None) -> tuple[list[RequestRecord], StepLog]:
    """Serves request i (prompt `prompts[i]`) from absolute time `arrivals_ns[i]` (perf_counter_ns, ascending).

    Returns one record per request, in request order (unserved ones are left out when cancelled), and the log
    of decode steps. `on_progress(finished, total)` is called whenever requests finish.
    """
    pending = deque(range(len(prompts)))
    batch = DecodeBatch(decoder)
    done: dict[int, RequestRecord] = {}
    starts, latencies, sizes = [], [], []
    while (pending or len(batch)) and not cancel.is_set():
        now = perf_counter_ns()
        while pending and len(batch) < max_batch and arrivals_ns[pending[0]] <= now and not cancel.is_set():
            index = pending.popleft()
            row = _InFlight(index, int(prompts[index].size), int(arrivals_ns[index]), 0, 0)
            batch.admit(row, prompts[index])
            now = perf_counter_ns()
        finished = [row for row in batch.rows if len(row.tokens) >= new_tokens]
        if not finished and len(batch):
            begin, latency = batch.step()
            starts.append(begin)
            latencies.append(latency)
            sizes.append(len(batch))
            finished = [row for row in batch.rows if len(row.tokens) >= new_tokens]
        elif not len(batch) and pending:
            wait_until(int(arrivals_ns[pending[0]]), cancel)
        for row in finished:
            done[row.index] = row.record(complete=True)
        batch.release(finished)
        if finished and on_progress is not None:
            on_progress(len(done), len(prompts))
    for row in batch.rows:  # cancelled mid-flight: keep what was measured, marked incomplete
        done[row.index] = row.record(complete=False)
    log = StepLog(np.asarray(starts, dtype=np.int64), np.asarray(latencies, dtype=np.int64),
                  np.asarray(sizes, dtype=np.int64))
    return [done[i] for i in sorted(done)], log

