"""The ONNX Runtime path for language models, through onnxruntime-genai.

Export: onnxruntime-genai's model builder turns a Hugging Face folder into an
ONNX decoder with past/present key-value inputs and outputs (GroupQueryAttention)
plus genai_config.json. It runs in a child process: it prints progress on its
own, keeps global state, and can be cancelled by ending that process. The result
is written to a temporary folder and renamed into place only when complete, so a
failed or cancelled export leaves nothing half-written. The builder supports the
families it lists (Llama, Mistral, Qwen, Phi, Gemma, ...), not GPT-2, and needs
the folder's tokenizer; a refusal says which.

Cache: `cached_genai_export` keeps each export in the user cache under the
source folder's content hash, so only the first benchmark of a folder pays for it.

Benchmark: the same GenerationSettings and GenerationResult as the PyTorch path,
timed the same way. The generator always keeps its KV cache, so `use_cache=False`
is refused. To produce exactly N tokens it is given min_length = max_length,
which forbids the end-of-sequence token where the PyTorch path merely ignores it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter_ns

import numpy as np

from core.progress import Progress
from engine.device.environment import fingerprint
from engine.errors import InputError, ModelNotFoundError, first_line
from engine.generative.errors import OnnxGenAIUnavailableError
from engine.generative.memory import PeakMemoryTracker
from engine.generative.model_folder import ModelFolder, check_model_folder
from engine.generative.prompts import random_prompts
from engine.generative.results import (
    GenerationResult,
    RequestRecord,
    summarize_requests,
)
from engine.generative.settings import GenerationSettings
from engine.model.handle import hash_files

PRECISIONS = ("fp32", "int8", "int4")  # what the builder offers for the CPU
GENAI_CONFIG = "genai_config.json"
WARMUP_STREAM = 1 << 40
CACHE_ENV = "AUTOGLM_STUDIO_CACHE"  # moves the optimization passes' cache too (tests point it at tmp_path)
EXPORTS_FOLDER = "onnxruntime-genai"  # in the user cache, beside the optimization passes' entries
EXPORT_FORMAT = 1


def genai_available() -> str | None:
    """None when onnxruntime-genai can be imported, else why not, in one line that says what to install."""
    try:
        import onnxruntime_genai  # noqa: F401
    except ImportError as error:
        if isinstance(error, ModuleNotFoundError) and error.name == "onnxruntime_genai":
            return ("the onnxruntime-genai backend needs the onnxruntime-genai package, which is not installed: "
                    "pip install onnxruntime-genai (or the studio's genai extra)")
        return f"onnxruntime-genai cannot be loaded: {first_line(error)}"
    return None


def export_genai_model(folder: str | Path, out_dir: str | Path, *, precision: str = "fp32",
                       cancel: threading.Event | None = None) -> Path:
    """Builds the ONNX Runtime GenAI model of `folder` into `out_dir` (created; must not exist yet)."""
    cancel = cancel or threading.Event()
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision '{precision}' for the ONNX Runtime GenAI export; choose {PRECISIONS}")
    reason = genai_available()
    if reason:
        raise OnnxGenAIUnavailableError(reason)
    checked = check_model_folder(folder)
    if not checked.has_tokenizer:
        raise OnnxGenAIUnavailableError(f"{checked.path}: the ONNX Runtime GenAI builder needs the model's "
                                        "tokenizer (tokenizer.json) in the folder")
    target = Path(out_dir)
    if target.exists():
        raise InputError(f"{target}: already exists; choose a new folder for the export")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _run_builder(checked.path, staging, precision, cancel)
        if not (staging / "model" / GENAI_CONFIG).is_file():
            raise OnnxGenAIUnavailableError("the ONNX Runtime GenAI builder finished without writing genai_config.json")
        (staging / "model").rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@dataclass(frozen=True)
class GenAIExport:
    """An ONNX Runtime GenAI model built from a Hugging Face folder: where it is kept and what building it cost."""

    source: ModelFolder  # the Hugging Face folder, with its sha256
    path: Path
    precision: str
    export_ms: float | None  # the builder's time when it ran for this benchmark; None when the cache had it

    def to_dict(self) -> dict:
        return {"path": str(self.path), "precision": self.precision, "cached": self.export_ms is None,
                "export_ms": self.export_ms}


def export_cache_root() -> Path:
    """Where exports are kept: the user cache, or AUTOGLM_STUDIO_CACHE (which moves the passes' cache too)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser() / EXPORTS_FOLDER
    import platformdirs

    return Path(platformdirs.user_cache_dir("autoglm-studio")) / EXPORTS_FOLDER


def cached_genai_export(folder: str | Path, *, precision: str = "fp32", cancel: threading.Event | None = None,
                        progress: Progress | None = None) -> GenAIExport:
    """The export of `folder`, built on first use and then reused while the folder's files stay the same.

    The cache key covers the config, weights and tokenizer files, the precision and the onnxruntime-genai
    version, so an edited folder or a new builder exports again. Exports are renamed into place only when
    complete, so an entry without genai_config.json was damaged from outside; it is built again.
    """
    reason = genai_available()
    if reason:
        raise OnnxGenAIUnavailableError(reason)
    source = check_model_folder(folder, compute_hash=True)
    target = export_cache_root() / _export_key(source, precision)
    if (target / GENAI_CONFIG).is_file():
        return GenAIExport(source, target, precision, None)
    shutil.rmtree(target, ignore_errors=True)
    (progress or (lambda fraction, message: None))(0.0, "exporting to ONNX Runtime GenAI (once; kept in the cache)")
    start = perf_counter_ns()
    export_genai_model(source.path, target, precision=precision, cancel=cancel)
    return GenAIExport(source, target, precision, (perf_counter_ns() - start) / 1e6)


def _export_key(source: ModelFolder, precision: str) -> str:
    from importlib import metadata

    weights = set(source.weight_files)
    small_files = sorted(p for p in source.path.iterdir() if p.is_file() and p not in weights
                         and p.suffix in (".json", ".txt", ".model"))
    text = json.dumps({"format": EXPORT_FORMAT, "weights": source.sha256, "files": hash_files(small_files)[0],
                       "precision": precision, "onnxruntime-genai": metadata.version("onnxruntime-genai")},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _run_builder(folder: Path, staging: Path, precision: str, cancel: threading.Event) -> None:
    log_path = staging / "builder.log"
    command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(folder),
               "-o", str(staging / "model"), "-p", precision, "-e", "cpu", "-c", str(staging / "cache")]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
        try:
            while process.poll() is None:
                if cancel.wait(0.2):
                    raise OnnxGenAIUnavailableError("the export was cancelled")
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait()
    if process.returncode != 0:
        raise OnnxGenAIUnavailableError(f"the ONNX Runtime GenAI builder failed for {folder.name}: "
                                        f"{_last_error_line(log_path)}")


def _last_error_line(log_path: Path) -> str:
    lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line or "not supported" in line]
    return (errors or lines or ["no output"])[-1][:500]


class GenAIModel:
    """An exported ONNX Runtime GenAI model, opened with a fixed number of intra-op threads."""

    def __init__(self, folder: str | Path, *, threads: int | None = None):
        reason = genai_available()
        if reason:
            raise OnnxGenAIUnavailableError(reason)
        import onnxruntime_genai as og

        self.folder = Path(folder)
        config_path = self.folder / GENAI_CONFIG
        if not config_path.is_file():
            raise ModelNotFoundError(f"{self.folder}: no {GENAI_CONFIG}; export the model first")
        self.genai_config = json.loads(config_path.read_text())
        self.threads = threads
        start = perf_counter_ns()
        config = og.Config(str(self.folder))
        if threads is not None:
            options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
            config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
        self.model = og.Model(config)
        self.load_ms = (perf_counter_ns() - start) / 1e6
        self.vocab_size = int(self.genai_config["model"]["vocab_size"])
        self.context = int(self.genai_config["model"].get("context_length") or 0) or None

    def describe(self) -> dict:
        from importlib import metadata

        return {
            "backend": "onnxruntime-genai",
            "model": {"path": str(self.folder), "type": self.genai_config["model"].get("type")},
            "device": "cpu",
            "intra_op_threads": self.threads,
            "onnxruntime-genai": metadata.version("onnxruntime-genai"),
        }


def run_genai_benchmark(model: GenAIModel, settings: GenerationSettings, *, cancel: threading.Event | None = None,
                        progress: Progress | None = None) -> GenerationResult:
    """The PyTorch benchmark's measurement on the ONNX Runtime GenAI generator (same prompts for the same seed)."""
    cancel = cancel or threading.Event()
    report = progress or (lambda fraction, message: None)
    if not settings.use_cache:
        raise InputError("the ONNX Runtime GenAI generator always uses its KV cache; drop --no-cache for this path")
    total = settings.prompt_tokens + settings.new_tokens
    if model.context is not None and total > model.context:
        raise InputError(f"prompt plus new tokens is {total} tokens but the exported model's context is "
                         f"{model.context}")
    description = model.describe()
    first_request_ms = None
    for k in range(settings.warmup_requests):
        if not cancel.is_set():
            record = _serve(model, _prompts(model, settings, WARMUP_STREAM + k), settings, -1 - k, cancel)
            first_request_ms = first_request_ms or record.total_ns / 1e6
    memory = PeakMemoryTracker("cpu")
    memory.start()
    records: list[RequestRecord] = []
    loop_start = loop_end = perf_counter_ns()
    while not cancel.is_set():
        report(len(records) / settings.requests, f"request {len(records) + 1}")
        records.append(_serve(model, _prompts(model, settings, len(records)), settings, len(records), cancel))
        memory.sample()
        loop_end = perf_counter_ns()
        if len(records) >= settings.requests and loop_end - loop_start >= settings.min_duration_s * 1e9:
            break
    status = "cancelled" if cancel.is_set() else "completed"
    report(1.0, status)
    return GenerationResult(
        status=status, settings=settings.to_dict(), model=description,
        cold_start={"load_ms": model.load_ms, "first_request_ms": first_request_ms or
                    (records[0].total_ns / 1e6 if records else None)},
        requests=records, summary=summarize_requests(records, loop_end - loop_start),
        memory=memory.stop(), loop_start_ns=loop_start, loop_end_ns=loop_end,
        environment=fingerprint(description),
    )


def _prompts(model: GenAIModel, settings: GenerationSettings, stream: int) -> np.ndarray:
    return random_prompts(settings.batch_size, settings.prompt_tokens, model.vocab_size, settings.seed, request=stream)


def _serve(model: GenAIModel, prompts: np.ndarray, settings: GenerationSettings, index: int,
           cancel: threading.Event) -> RequestRecord:
    import onnxruntime_genai as og

    length = prompts.shape[1] + settings.new_tokens
    params = og.GeneratorParams(model.model)
    options = {"max_length": length, "min_length": length, "batch_size": prompts.shape[0],
               "do_sample": settings.do_sample}
    if settings.do_sample:
        options.update(temperature=settings.temperature, top_k=settings.top_k or model.vocab_size,
                       random_seed=settings.seed)
    params.set_search_options(**options)
    generator = og.Generator(model.model, params)
    start = perf_counter_ns()
    generator.append_tokens(prompts.astype(np.int32))
    generator.generate_next_token()
    tokens = np.asarray(generator.get_next_tokens()).tolist()
    times, starts, latencies = [perf_counter_ns()], [], []
    outputs = [[t] for t in tokens]
    complete = True
    for _ in range(1, settings.new_tokens):
        if cancel.is_set():
            complete = False
            break
        begin = perf_counter_ns()
        generator.generate_next_token()
        tokens = np.asarray(generator.get_next_tokens()).tolist()
        end = perf_counter_ns()
        for row, token in zip(outputs, tokens):
            row.append(int(token))
        times.append(end)
        starts.append(begin)
        latencies.append(end - begin)
    return RequestRecord(
        index=index, batch_size=prompts.shape[0], prompt_tokens=prompts.shape[1], start_ns=start,
        prefill_start_ns=start, token_times_ns=np.asarray(times, dtype=np.int64),
        decode_starts_ns=np.asarray(starts, dtype=np.int64), decode_latencies_ns=np.asarray(latencies, dtype=np.int64),
        output_ids=tuple(tuple(int(t) for t in row) for row in outputs), complete=complete,
    )
