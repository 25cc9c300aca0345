"""Run planned steps in order, each from the cache when its (input, pass, config) was done before.

Keys chain: a step's key hashes its parent's key with its own pass and config,
so the whole chain is known before anything runs. The pipeline starts after
the deepest step whose ONNX output is cached (PyTorch steps keep no model, so
they are replayed from their recorded reports when a later export is cached).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from core.progress import Progress
from engine.device.discovery import DeviceRunner
from engine.errors import OptimizationCancelled
from engine.optimize.passes.base import (
    Artifact,
    OnnxArtifact,
    PassContext,
    config_dict,
    get_pass,
)
from engine.optimize.passes.cache import MODEL_FILE, PassCache, file_sha256, step_key
from engine.optimize.plan import PlannedStep


@dataclass
class StepRecord:
    pass_name: str
    title: str
    config: dict
    key: str
    cached: bool
    seconds: float
    report: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    output_path: Path | None = None  # the cached ONNX file, for steps that produce one

    def to_dict(self) -> dict:
        return {"pass": self.pass_name, "title": self.title, "config": self.config, "cache_key": self.key,
                "cached": self.cached, "seconds": self.seconds, "report": self.report, "notes": self.notes,
                "output_path": str(self.output_path) if self.output_path else None}


@dataclass
class PipelineSettings:
    runner: DeviceRunner
    inputs: object  # ModelInputs
    source_specs: object  # FeedSpecs
    threads: int | None
    cancel: threading.Event
    progress: Progress


def step_keys(steps: Sequence[PlannedStep], root_key: str, settings: PipelineSettings) -> list[str]:
    keys, parent = [], root_key
    for step in steps:
        implementation = get_pass(step.pass_name)
        extra = {}
        if implementation.uses_inputs:
            extra["inputs"] = settings.inputs.to_key()
        if implementation.uses_device:
            extra["device"] = settings.runner.to_dict()
            extra["threads"] = settings.threads
        parent = step_key(parent, step.pass_name, config_dict(step.config), extra)
        keys.append(parent)
    return keys


def run_pipeline(steps: Sequence[PlannedStep], source: Artifact | Callable[[], Artifact], root_key: str,
                 settings: PipelineSettings, cache: PassCache, *, weights: Sequence[float] | None = None,
                 ) -> tuple[Artifact, list[StepRecord]]:
    """The final artifact and a record per step; `source` may be a callable so a full cache hit never loads it."""
    keys = step_keys(steps, root_key, settings)
    weights = list(weights or [get_pass(s.pass_name).weight for s in steps])
    total = sum(weights) or 1.0
    start, artifact, records = 0, None, []
    for index in range(len(steps) - 1, -1, -1):
        if get_pass(steps[index].pass_name).accepts == "onnx" or steps[index].pass_name == "export_onnx":
            entry = cache.lookup(keys[index], needs_model=True)
            if entry is not None:
                start, artifact = index + 1, OnnxArtifact(entry.model_path)
                break
    for index in range(start):
        entry = cache.lookup(keys[index], needs_model=False)
        provenance = entry.provenance if entry else {}
        records.append(StepRecord(steps[index].pass_name, steps[index].title, config_dict(steps[index].config),
                                  keys[index], True, 0.0, provenance.get("report", {}), provenance.get("notes", []),
                                  entry.model_path if entry else None))
    if artifact is None:
        artifact = source() if callable(source) else source
    done = sum(weights[:start])
    for index in range(start, len(steps)):
        step = steps[index]
        if settings.cancel.is_set():
            raise OptimizationCancelled("optimization cancelled; nothing was written")
        low, share = done / total, weights[index] / total

        def progress(fraction: float, message: str, low=low, share=share, title=step.title) -> None:
            settings.progress(low + share * fraction, f"{title}: {message}")

        artifact, record = _run_step(step, artifact, keys[index], keys[index - 1] if index else root_key,
                                     settings, cache, progress)
        records.append(record)
        done += weights[index]
        settings.progress(done / total, f"{step.title}: done")
    return artifact, records


def _run_step(step: PlannedStep, artifact: Artifact, key: str, parent_key: str, settings: PipelineSettings,
              cache: PassCache, progress) -> tuple[Artifact, StepRecord]:
    implementation = get_pass(step.pass_name)
    staging = cache.staging()
    work = staging / "work"
    work.mkdir()
    context = PassContext(settings.cancel, progress, work, staging / MODEL_FILE, settings.runner, settings.inputs,
                          settings.source_specs, settings.threads)
    started, clock = datetime.now(UTC), time.perf_counter()
    try:
        progress(0.0, "starting")
        output = implementation.run(artifact, step.config, context)
        context.check_cancel()
        shutil.rmtree(work, ignore_errors=True)
        seconds = time.perf_counter() - clock
        provenance = {
            "key": key, "parent_key": parent_key,
            "parent_sha256": file_sha256(artifact.path) if isinstance(artifact, OnnxArtifact) else None,
            "pass": step.pass_name, "config": config_dict(step.config),
            "started_at": started.isoformat(), "finished_at": datetime.now(UTC).isoformat(), "seconds": seconds,
            "output_sha256": file_sha256(context.output_path) if isinstance(output.artifact, OnnxArtifact) else None,
            "report": output.report, "notes": output.notes,
        }
        entry = cache.commit(key, staging, provenance)
    except BaseException:
        cache.discard(staging)
        raise
    result = OnnxArtifact(entry.model_path) if isinstance(output.artifact, OnnxArtifact) else output.artifact
    record = StepRecord(step.pass_name, step.title, config_dict(step.config), key, False, seconds, output.report,
                        output.notes, entry.model_path)
    return result, record


def model_files(path: Path) -> list[Path]:
    """The ONNX file and its external data file, when it has one."""
    data = path.with_name(path.name + ".data")
    return [path, data] if data.is_file() else [path]
