"""The generative-model use case shared by the CLI and the GUI: TTFT, TPOT and tokens/s, saved as a run.

One request mode is chosen by the options: plain generation (default), prefix reuse (a shared system
prompt), serving (Poisson arrivals with batched decode), the KV-cache comparison (the same requests with
and without the cache) or an arrival-rate sweep (a serving stream per rate, then all at once, and where the
server saturates). Plain generation runs on PyTorch or, exported once into the user cache, on ONNX Runtime
GenAI, measured the same way. Telemetry covers the timed window, so energy is given per generated token.
Every prefill and decode step is stored as a latency sample whose batch is the tokens it produced; TTFT,
TPOT and the rest go in the run summary.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from core.latency_stats import LatencyStats
from core.progress import Progress
from engine.device.environment import fingerprint
from engine.errors import InputError
from engine.generative.errors import OnnxGenAIUnavailableError
from engine.generative.model_folder import ModelFolder
from engine.generative.onnx_genai import (  # torch-free; onnxruntime_genai loads only when a model is opened
    GenAIExport,
    GenAIModel,
    cached_genai_export,
    genai_available,
    run_genai_benchmark,
)
from engine.generative.results import GenerationResult, RequestRecord, token_samples
from engine.measure.samples import SampleBuffer
from profilers.sampler import DEFAULT_HZ
from storage import ModelInfo, StorageError
from studio import __version__
from studio.usecases.recording import RunRecording
from studio.usecases.runs import open_store
from studio.usecases.telemetry import open_sampler, window_telemetry

if TYPE_CHECKING:  # these modules import torch, which only the run itself should pay for
    from engine.generative.benchmark import KvCacheComparison
    from engine.generative.prefix_reuse import PrefixReuseResult
    from engine.generative.quantization import QuantizationReport
    from engine.generative.serving import RateSweep, ServingResult

GENERATE_SCHEMA_VERSION = 1
MODES = ("generation", "prefix_reuse", "serving", "kv_cache_comparison", "rate_sweep")
BACKENDS = ("torch", "onnxruntime-genai")
DEFAULT_MAX_BATCH = 8
_MODE_OPTIONS = {"prefix_reuse": "prefix reuse (--shared-prefix)", "serving": "serving (--rate/--duration)",
                 "rate_sweep": "an arrival-rate sweep (--rates)",
                 "kv_cache_comparison": "the KV-cache comparison (--compare-kv-cache)"}
_NOT_IN_SUMMARY = ("requests", "environment", "without_reuse", "with_reuse", "steps")


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
    rates: tuple[float, ...] = ()  # rate-sweep mode: a serving stream at each of these arrival rates
    duration_s: float | None = None  # serving and rate-sweep modes: the arrival window of each stream
    max_batch: int | None = None  # serving and rate-sweep modes: requests decoded together (default 8)
    compare_kv_cache: bool = False  # KV-cache comparison mode: the same requests with and without the cache
    backend: str = "torch"  # or "onnxruntime-genai" (plain generation, exported once into the user cache)
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
        chosen = [mode for mode, on in (
            ("prefix_reuse", self.shared_prefix is not None),
            ("serving", self.rate is not None or (self.duration_s is not None and not self.rates)),
            ("rate_sweep", bool(self.rates)),
            ("kv_cache_comparison", self.compare_kv_cache)) if on]
        if len(chosen) > 1:
            options = [_MODE_OPTIONS[mode] for mode in chosen]
            raise InputError(f"choose {options[0]} or {options[1]}, not both" if len(options) == 2
                             else f"choose one of {', '.join(options)}")
        mode = chosen[0] if chosen else "generation"
        if self.max_batch is not None and mode not in ("serving", "rate_sweep"):
            raise InputError("--max-batch is how many requests serving decodes together: it needs --rate or --rates")
        return mode


@dataclass(frozen=True)
class ModelUnderTest:
    """The model a report measured, on whichever backend ran it."""

    folder: ModelFolder  # the Hugging Face folder, with its sha256
    backend: str
    device: str
    dtype: str  # torch's dtype, or the ONNX Runtime GenAI export's precision
    parameter_count: int | None  # None where the backend does not say
    vocab_size: int
    export: GenAIExport | None = None  # the ONNX Runtime GenAI export the benchmark ran


@dataclass(frozen=True)
class GenerateReport:
    request: GenerateRequest
    model: ModelUnderTest
    result: GenerationResult | PrefixReuseResult | ServingResult | KvCacheComparison | RateSweep  # by mode
    telemetry: dict | None
    generated_tokens: int
    quantization: QuantizationReport | None = None  # weight-only quantization: perplexity before and after
    run_id: int | None = None
    save_error: str | None = None

    def to_dict(self) -> dict:
        return {"schema_version": GENERATE_SCHEMA_VERSION, "tool_version": __version__, "mode": self.request.mode,
                "backend": self.model.backend, "run_id": self.run_id, **self.result.to_dict(),
                "generated_tokens": self.generated_tokens, "telemetry_hz": self.request.telemetry_hz,
                "telemetry": self.telemetry,
                "weight_quantization": self.quantization.to_dict() if self.quantization else None,
                "onnxruntime_genai_export": self.model.export.to_dict() if self.model.export else None}


def benchmark_generation(request: GenerateRequest, *, cancel: threading.Event | None = None,
                         progress: Progress | None = None, live: SampleBuffer | None = None) -> GenerateReport:
    """Loads (or exports) the model, runs the request's mode with telemetry, and saves the run.

    `live` receives every prefill and decode step as it happens (plain generation on PyTorch), for live plots.
    """
    mode = request.mode
    settings = _settings(mode, request)  # bad values fail here, before a run row exists
    _check_backend(request, mode)
    cancel = cancel or threading.Event()
    runner, model, quantization = _open(request, cancel, progress)
    db = open_store(request.db_url) if request.save else None
    try:
        recording = (RunRecording.start(db, _model_info(model), _run_fields(request, model, runner), None)
                     if db else None)
        sampler = open_sampler(request.telemetry_hz) if request.telemetry_hz else None
        try:
            if sampler is not None:
                sampler.start()
            result, stored, measured = _run(mode, request.backend, runner, settings, request.threads, cancel,
                                            progress, live)
            tokens = sum(r.batch_size * r.new_tokens for r in measured)
            window = (min(r.start_ns for r in measured), max(r.start_ns + r.total_ns for r in measured))
            telemetry = (window_telemetry(sampler, *window, inferences=len(measured), items=tokens)
                         if sampler is not None and measured else None)
        except Exception as error:  # recorded as the run's failure, then raised on unchanged
            if recording is not None:
                recording.finish("failed", error=" ".join(str(error).split()))
            raise
        finally:
            if sampler is not None:
                sampler.close()
        report = GenerateReport(request, model, result, telemetry, tokens, quantization)
        return _save(report, recording, stored) if recording else report
    finally:
        if db is not None:
            db.close()


def _check_backend(request: GenerateRequest, mode: str) -> None:
    """ONNX Runtime GenAI runs plain generation on the CPU in float32; anything else is refused before loading."""
    if request.backend not in BACKENDS:
        raise InputError(f"unknown backend '{request.backend}'; choose one of {', '.join(BACKENDS)}")
    if request.backend == "torch":
        return
    refused = [what for what, asked in (
        (_MODE_OPTIONS.get(mode), mode != "generation"),
        ("--no-cache (its generator always keeps the KV cache)", not request.use_cache),
        ("weight quantization", request.weight_quantization is not None),
        (f"device {request.device}", request.device != "cpu"),
        (f"dtype {request.dtype}", request.dtype != "float32")) if asked]
    if refused:
        raise InputError(f"the onnxruntime-genai backend runs plain generation on the CPU in float32; it cannot "
                         f"take {', '.join(refused)}")
    reason = genai_available()
    if reason:
        raise OnnxGenAIUnavailableError(reason)


def _open(request: GenerateRequest, cancel: threading.Event, progress: Progress | None):
    """The runner the mode is given (a CausalLM or a GenAIModel), what it is, and its quantization report."""
    if request.backend == "onnxruntime-genai":
        export = cached_genai_export(request.model_dir, cancel=cancel, progress=progress)
        runner = GenAIModel(export.path, threads=request.threads)
        return runner, ModelUnderTest(export.source, request.backend, "cpu", export.precision, None,
                                      runner.vocab_size, export), None
    from engine.generative.loading import load_causal_lm

    lm = load_causal_lm(request.model_dir, device=request.device, dtype=request.dtype, threads=request.threads)
    quantization = None
    if request.weight_quantization:
        lm, quantization = _quantize(lm, request)
    return lm, ModelUnderTest(lm.folder, request.backend, lm.device, lm.dtype, lm.parameter_count,
                              lm.vocab_size), quantization


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
        RateSweepSettings,
        ServingSettings,
    )

    if mode == "prefix_reuse":
        return PrefixReuseSettings(shared_prefix_tokens=request.shared_prefix, suffix_tokens=request.prompt_tokens,
                                   new_tokens=request.new_tokens, requests=request.requests, seed=request.seed)
    if mode in ("serving", "rate_sweep"):
        stream = ServingSettings(rate_per_s=request.rate if mode == "serving" else min(request.rates),
                                 requests=request.requests, duration_s=request.duration_s,
                                 prompt_tokens=request.prompt_tokens, new_tokens=request.new_tokens,
                                 max_batch=DEFAULT_MAX_BATCH if request.max_batch is None else request.max_batch,
                                 seed=request.seed)
        return stream if mode == "serving" else RateSweepSettings(rates_per_s=tuple(request.rates), stream=stream)
    if mode == "kv_cache_comparison" and not request.use_cache:
        raise InputError("the KV-cache comparison runs with the cache and without it; drop --no-cache")
    return GenerationSettings(prompt_tokens=request.prompt_tokens, new_tokens=request.new_tokens,
                              batch_size=request.batch, requests=request.requests, use_cache=request.use_cache,
                              seed=request.seed)


def _run(mode: str, backend: str, runner, settings, threads: int | None, cancel: threading.Event,
         progress: Progress | None, live: SampleBuffer | None):
    """Runs the chosen mode: (result, the request records stored as samples, every request measured)."""
    if mode == "prefix_reuse":
        from engine.generative.prefix_reuse import run_prefix_reuse_benchmark

        result = run_prefix_reuse_benchmark(runner, settings, threads=threads, cancel=cancel, progress=progress)
        return result, result.with_reuse, result.with_reuse
    if mode == "serving":
        from engine.generative.serving import run_serving_benchmark

        result = run_serving_benchmark(runner, settings, threads=threads, cancel=cancel, progress=progress)
    elif mode == "rate_sweep":
        from engine.generative.serving import sweep_arrival_rates

        result = sweep_arrival_rates(runner, settings, threads=threads, cancel=cancel, progress=progress)
    elif mode == "kv_cache_comparison":
        from engine.generative.benchmark import compare_kv_cache

        result = compare_kv_cache(runner, settings, threads=threads, cancel=cancel, progress=progress)
        return result, result.with_cache.requests, result.requests
    elif backend == "onnxruntime-genai":
        result = run_genai_benchmark(runner, settings, cancel=cancel, progress=progress)
    else:
        from engine.generative.benchmark import run_generation_benchmark

        result = run_generation_benchmark(runner, settings, threads=threads, cancel=cancel, progress=progress,
                                          samples=live)
    return result, result.requests, result.requests


def _save(report: GenerateReport, recording: RunRecording, records: list[RequestRecord]) -> GenerateReport:
    samples = token_samples(records)
    summary = _summary(report.to_dict())
    # Every stored sample is one prefill or decode step, so these are per-step figures, as in `runs list`.
    summary["latency_ms"] = LatencyStats.of(samples.latencies_ns, wall_ns=0).latency_dict()
    try:
        recording.append_samples(samples.timestamps_ns, samples.latencies_ns, samples.tokens)
        recording.finish(report.result.status, summary=summary, telemetry=report.telemetry)
        return replace(report, run_id=recording.run_id)
    except StorageError as error:
        return replace(report, save_error=str(error))


def _summary(document: dict) -> dict:
    """The report without per-request lists and environments, here and in the results it holds side by side."""
    return {key: _summary(value) if isinstance(value, dict) else value for key, value in document.items()
            if key not in _NOT_IN_SUMMARY}


def _model_info(model: ModelUnderTest) -> ModelInfo:
    folder = model.folder
    return ModelInfo(path=str(folder.path), sha256=folder.sha256, format="hf_causal_lm", size_bytes=folder.size_bytes,
                     io_signature={"model_type": folder.model_type, "vocab_size": model.vocab_size,
                                   "parameters": model.parameter_count})


def _run_fields(request: GenerateRequest, model: ModelUnderTest, runner) -> dict:
    settings = {key: value for key, value in request.__dict__.items() if key not in ("db_url", "tags", "notes", "save")}
    options = {"precision": model.dtype} if model.export else {"dtype": model.dtype}
    return {"device": model.device, "backend": model.backend, "provider": model.device, "provider_options": options,
            "settings": {**settings, "mode": request.mode, "pid": os.getpid()},
            "environment": fingerprint(runner.describe()), "tags": request.tags, "notes": request.notes}
