"""The generative-model use case shared by the CLI and the GUI: TTFT, TPOT and tokens/s, saved as a run.

One request mode is chosen by the options: plain generation (default), prefix reuse (a shared system
prompt), or serving (Poisson arrivals with batched decode). Telemetry covers the timed window, so energy
is given per generated token. Every prefill and decode step is stored as a latency sample whose batch is
the tokens it produced; TTFT, TPOT and the rest go in the run summary.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field, replace

from core.latency_stats import LatencyStats
from engine.device.environment import fingerprint
from engine.errors import InputError
from engine.measure.runner import Progress
from engine.measure.samples import SampleBuffer
from profilers.sampler import DEFAULT_HZ
from storage import ModelInfo, StorageError
from studio import __version__
from studio.usecases.benchmark import open_sampler, window_telemetry
from studio.usecases.recording import RunRecording
from studio.usecases.runs import open_store

GENERATE_SCHEMA_VERSION = 1
MODES = ("generation", "prefix_reuse", "serving")


@dataclass(frozen=True)
class GenerateRequest:
    model_dir: str
    prompt_tokens: int = 128
    new_tokens: int = 64
    batch: int = 1
    requests: int = 5
    use_cache: bool = True
    shared_prefix: int | None = None  # prefix-reuse mode: tokens of shared system prompt
    rate: float | None = None  # serving mode: Poisson arrivals per second
    duration_s: float | None = None  # serving mode: the arrival window
    max_batch: int = 8  # serving mode: requests decoded together
    device: str = "cpu"
    dtype: str = "float32"
    threads: int | None = None
    seed: int = 0
    weight_quantization: str | None = None  # "int8-dynamic" or "nf4": weight-only, graded by perplexity
    max_perplexity_increase: float | None = None  # e.g. 0.02: refuse a quantized model 2 % worse or more
    telemetry_hz: float | None = DEFAULT_HZ
    save: bool = True
    db_url: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    notes: str = ""

    @property
    def mode(self) -> str:
        if self.shared_prefix is not None:
            if self.rate is not None or self.duration_s is not None:
                raise InputError("choose prefix reuse (--shared-prefix) or serving (--rate/--duration), not both")
            return "prefix_reuse"
        return "serving" if self.rate is not None or self.duration_s is not None else "generation"


@dataclass(frozen=True)
class GenerateReport:
    request: GenerateRequest
    result: object  # GenerationResult, PrefixReuseResult or ServingResult
    telemetry: dict | None
    generated_tokens: int
    quantization: dict | None = None  # the weight-only quantization's report: perplexity before and after
    run_id: int | None = None
    save_error: str | None = None

    def to_dict(self) -> dict:
        return {"schema_version": GENERATE_SCHEMA_VERSION, "tool_version": __version__, "mode": self.request.mode,
                "run_id": self.run_id, **self.result.to_dict(), "generated_tokens": self.generated_tokens,
                "telemetry_hz": self.request.telemetry_hz, "telemetry": self.telemetry,
                "weight_quantization": self.quantization}


def benchmark_generation(request: GenerateRequest, *, cancel: threading.Event | None = None,
                       progress: Progress | None = None, live: SampleBuffer | None = None) -> GenerateReport:
    """Loads the model folder, runs the request's mode with telemetry, and saves the run.

    `live` receives every prefill and decode step as it happens (plain generation mode), for live plots.
    """
    from engine.generative.loading import load_causal_lm

    mode = request.mode
    settings = _settings(mode, request)  # bad values fail here, before a run row exists
    cancel = cancel or threading.Event()
    lm = load_causal_lm(request.model_dir, device=request.device, dtype=request.dtype, threads=request.threads)
    quantization = _quantize(lm, request) if request.weight_quantization else None
    if quantization is not None:
        lm = quantization[0]
    db = open_store(request.db_url) if request.save else None
    try:
        recording = RunRecording.start(db, _model_info(lm), _run_fields(request, lm), None) if db else None
        sampler = open_sampler(request.telemetry_hz) if request.telemetry_hz else None
        try:
            if sampler is not None:
                sampler.start()
            result, records, window = _run(mode, lm, settings, request.threads, cancel, progress, live)
            tokens = sum(r.new_tokens for r in records)
            telemetry = (window_telemetry(sampler, *window, inferences=len(records), items=tokens)
                         if sampler is not None and records else None)
        except Exception as error:  # recorded as the run's failure, then raised on unchanged
            if recording is not None:
                recording.finish("failed", error=" ".join(str(error).split()))
            raise
        finally:
            if sampler is not None:
                sampler.close()
        report = GenerateReport(request, result, telemetry, tokens, quantization[1].to_dict() if quantization else None)
        return _save(report, recording, records) if recording else report
    finally:
        if db is not None:
            db.close()


def _quantize(lm, request: GenerateRequest):
    """Weight-only quantization, graded like every optimization: by a fidelity metric, here perplexity."""
    from engine.generative.quantization import quantize_with_fidelity

    quantized, report = quantize_with_fidelity(lm, request.weight_quantization)
    budget = request.max_perplexity_increase
    if budget is not None and report.perplexity_increase > budget:
        raise InputError(f"{request.weight_quantization} raises perplexity by {report.perplexity_increase:.2%}, over the "
                         f"budget of {budget:.2%}: the quantized model was not benchmarked")
    return quantized, report


def _settings(mode: str, request: GenerateRequest):
    from engine.generative.settings import (
        GenerationSettings,
        PrefixReuseSettings,
        ServingSettings,
    )

    if mode == "prefix_reuse":
        return PrefixReuseSettings(shared_prefix_tokens=request.shared_prefix, suffix_tokens=request.prompt_tokens,
                                   new_tokens=request.new_tokens, requests=request.requests, seed=request.seed)
    if mode == "serving":
        return ServingSettings(rate_per_s=request.rate, requests=request.requests, duration_s=request.duration_s,
                               prompt_tokens=request.prompt_tokens, new_tokens=request.new_tokens,
                               max_batch=request.max_batch, seed=request.seed)
    return GenerationSettings(prompt_tokens=request.prompt_tokens, new_tokens=request.new_tokens,
                              batch_size=request.batch, requests=request.requests, use_cache=request.use_cache,
                              seed=request.seed)


def _run(mode: str, lm, settings, threads: int | None, cancel: threading.Event, progress: Progress | None,
         live: SampleBuffer | None = None):
    """Runs the chosen mode; returns (result, the request records to store, the timed window in ns)."""
    if mode == "prefix_reuse":
        from engine.generative.prefix_reuse import run_prefix_reuse_benchmark

        result = run_prefix_reuse_benchmark(lm, settings, threads=threads, cancel=cancel, progress=progress)
        records = result.with_reuse
    elif mode == "serving":
        from engine.generative.serving import run_serving_benchmark

        result = run_serving_benchmark(lm, settings, threads=threads, cancel=cancel, progress=progress)
        records = result.requests
    else:
        from engine.generative.benchmark import run_generation_benchmark

        result = run_generation_benchmark(lm, settings, threads=threads, cancel=cancel, progress=progress, samples=live)
        records = result.requests
    starts = [r.start_ns for r in records]
    ends = [r.start_ns + r.total_ns for r in records]
    window = (min(starts), max(ends)) if records else (0, 0)
    return result, records, window


def _save(report: GenerateReport, recording: RunRecording, records) -> GenerateReport:
    from engine.generative.results import token_samples

    samples = token_samples(records)
    status = getattr(report.result, "status", "completed")
    summary = {key: value for key, value in report.to_dict().items()
               if key not in ("requests", "environment", "without_reuse", "with_reuse", "steps")}
    # Every stored sample is one prefill or decode step, so these are per-step figures, as in `runs list`.
    summary["latency_ms"] = LatencyStats.of(samples.latencies_ns, wall_ns=0).latency_dict()
    try:
        recording.append_samples(samples.timestamps_ns, samples.latencies_ns, samples.tokens)
        recording.finish(status, summary=summary, telemetry=report.telemetry)
        return replace(report, run_id=recording.run_id)
    except StorageError as error:
        return replace(report, save_error=str(error))


def _model_info(lm) -> ModelInfo:
    folder = lm.folder
    return ModelInfo(path=str(folder.path), sha256=folder.sha256 or _folder_hash(folder), format="hf_causal_lm",
                     size_bytes=folder.size_bytes, io_signature={"model_type": folder.model_type,
                                                                  "vocab_size": lm.vocab_size,
                                                                  "parameters": lm.parameter_count})


def _folder_hash(folder) -> str:
    from engine.model.handle import hash_files

    files = [folder.path / "config.json", *folder.weight_files]
    return hash_files([p for p in files if p.exists()])[0]


def _run_fields(request: GenerateRequest, lm) -> dict:
    settings = {key: value for key, value in request.__dict__.items() if key not in ("db_url", "tags", "notes", "save")}
    description = lm.describe()
    return {"device": lm.device, "backend": "torch", "provider": lm.device, "provider_options": {"dtype": lm.dtype},
            "settings": {**settings, "mode": request.mode, "pid": os.getpid()},
            "environment": fingerprint(description), "tags": request.tags, "notes": request.notes}
