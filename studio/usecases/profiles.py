"""Per-layer profiles, shared by the CLI and the GUI: a profiled run kept apart from the timed one, because
profiling perturbs timing; the profile is stored with the timed run and two runs' profiles can be compared."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from core.progress import Progress
from engine.errors import InputError
from engine.profiling.layer_profile import LayerProfile
from engine.profiling.profiler import profile_layers
from engine.profiling.report import ProfileComparison, compare_profiles
from studio.usecases.bench_plan import BenchRequest
from studio.usecases.bench_reports import BenchReport
from studio.usecases.benchmark import benchmark_timed_loop
from studio.usecases.runs import open_store

PROFILE_SCHEMA_VERSION = 1
PROFILE_SHARE = 0.3  # of the progress bar: the profiled run after the timed one


@dataclass(frozen=True)
class ProfilingOverhead:
    """How much profiling slowed the model: the profiled run's median next to the timed run's."""

    timed_median_ms: float | None
    profiled_median_ms: float | None

    @property
    def ratio(self) -> float | None:
        timed, profiled = self.timed_median_ms, self.profiled_median_ms
        return profiled / timed if timed and profiled else None

    def to_dict(self) -> dict:
        return {"timed_median_ms": self.timed_median_ms, "profiled_median_ms": self.profiled_median_ms,
                "ratio": self.ratio}


@dataclass(frozen=True)
class ProfileReport:
    bench: BenchReport  # the timed run, measured and saved as `bench` would
    profile: LayerProfile | None  # the separate profiled run; None when the timed run was stopped first
    stored: bool  # whether the profile was saved with the timed run

    @property
    def overhead(self) -> ProfilingOverhead:
        return ProfilingOverhead(self.bench.result.stats.p50_ms,
                                 self.profile.profiled_run_ms.get("median") if self.profile else None)

    def to_dict(self) -> dict:
        return {"schema_version": PROFILE_SCHEMA_VERSION, "run_id": self.bench.run_id, "profile_stored": self.stored,
                "bench": self.bench.to_dict(), "profile": self.profile.to_dict() if self.profile else None,
                "profiling_overhead": self.overhead.to_dict()}


def profile_model(request: BenchRequest, cancel: threading.Event | None = None, progress: Progress | None = None,
                  *, iterations: int = 20) -> ProfileReport:
    """The normal timed benchmark first (saved), then a separate profiled run, because profiling perturbs timing;
    the profile is stored with the timed run."""
    cancel = cancel or threading.Event()
    report = progress or (lambda fraction, message: None)
    if iterations < 1:
        raise InputError(f"profiling needs at least 1 iteration, got {iterations}")
    if request.scenario is not None:
        raise InputError("a profile follows the plain timed loop; leave out --scenario and its options")
    bench = benchmark_timed_loop(request, cancel=cancel, progress=lambda f, m: report(f * (1 - PROFILE_SHARE), m))
    if bench.result.status != "completed" or cancel.is_set():
        return ProfileReport(bench, None, False)
    profile = profile_layers(bench.runner.backend, bench.model, bench.runner, request.options, bench.inputs,
                             iterations=iterations, warmup=request.settings.warmup, cancel=cancel,
                             progress=lambda f, m: report(1 - PROFILE_SHARE + f * PROFILE_SHARE, f"profiling: {m}"))
    stored = False
    if bench.run_id is not None:
        with open_store(request.db_url) as db:
            db.runs.save_profile(bench.run_id, profile.runtime, profile.to_dict())
        stored = True
    report(1.0, "profiled")
    return ProfileReport(bench, profile, stored)


def load_run_profile(db_url: str | None, run_id: int) -> LayerProfile | None:
    """The layer profile stored with a run, or None when it was never profiled."""
    with open_store(db_url) as db:
        stored = db.runs.load_profile(run_id)
    return LayerProfile.from_dict(stored.profile) if stored is not None else None


def compare_run_profiles(db_url: str | None, run_a: int, run_b: int) -> ProfileComparison:
    """Per op family and per compute layer, run A (the baseline) against run B: measured and MAC-predicted."""
    profiles = []
    for run_id in (run_a, run_b):
        profile = load_run_profile(db_url, run_id)
        if profile is None:
            raise InputError(f"run {run_id} has no layer profile; make one with `autoglm-studio profile MODEL`")
        profiles.append(profile)
    return compare_profiles(*profiles)
