"""One sweep point as a saved run: its samples stream to storage, telemetry covers its timed loop, and its energy
says which counter and device it covers, or why it is unavailable. A point that cannot start still leaves a run."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from core.latency_stats import LatencyStats
from core.progress import Progress
from engine.device.discovery import Device
from engine.errors import EngineError
from engine.measure.adaptive_stopping import StoppingRule
from engine.measure.samples import SampleBuffer
from engine.model.handle import ModelHandle
from engine.sweep.grid import PointSummary, SweepPoint
from engine.sweep.points import PointTarget, measure_point, timed_window
from studio.usecases.bench_plan import BenchPlan
from studio.usecases.recording import RunRecording, model_info
from studio.usecases.telemetry import open_sampler, window_telemetry

if TYPE_CHECKING:  # SQLAlchemy loads when a database is opened, not when the CLI starts
    from storage import Database


def sweep_tags(sweep_id: int) -> tuple[str, ...]:
    """History filters by tag: every point of sweep 7 carries "sweep-7"."""
    return ("sweep", f"sweep-{sweep_id}")


def measure_point_run(db: Database, sweep_id: int, target: PointTarget, stopping: StoppingRule,
                      telemetry_hz: float | None, cancel: threading.Event, progress: Progress,
                      run_ids: dict[str, int], artifact_id: int | None = None) -> PointSummary:
    """One point as a saved run (its id goes to `run_ids` at once, so a failure names its run too): samples stream
    to storage as taken, and telemetry covers the timed loop."""
    samples = SampleBuffer()
    point = target.point
    plan = BenchPlan(target.handle, target.backend, target.device, target.runner, target.inputs)
    settings = {**target.options.to_dict(), "batch": point.batch, "stopping": stopping.to_dict(),
                "recipe": point.recipe or "original", "telemetry_hz": telemetry_hz}
    recording = RunRecording.start_bench(db, plan, settings, samples, tags=sweep_tags(sweep_id), notes=point.label(),
                                         sweep_id=sweep_id, sweep_point=point.key, artifact_id=artifact_id)
    run_ids[point.key] = recording.run_id
    sampler = None
    try:
        sampler = open_sampler(telemetry_hz) if telemetry_hz else None
        if sampler is not None:
            sampler.subscribe(recording.on_telemetry)
            sampler.start()
        measurement = measure_point(target, stopping, cancel=cancel, progress=progress, samples=samples)
        telemetry = None
        if sampler is not None:
            start, end, starts = timed_window(measurement)
            telemetry = window_telemetry(sampler, start, end, inferences=measurement.summary.samples,
                                         items=measurement.summary.items, latency_starts_ns=starts)
    except Exception as error:  # recorded as the run's failure, then raised on unchanged
        recording.finish("failed", error=str(error) if isinstance(error, EngineError)
                         else f"{type(error).__name__}: {error}")
        raise
    finally:
        if sampler is not None:
            sampler.close()
    summary = measurement.summary.with_energy(*point_energy(telemetry, target.device, telemetry_hz))
    run = measurement.run
    stats = LatencyStats.of(run.latencies_ns, wall_ns=run.loop_end_ns - run.loop_start_ns,
                            items=run.latencies_ns.size * measurement.batch_size)
    recording.finish(summary.status, telemetry=telemetry, summary={
        "status": summary.status, "settings": settings, "inputs": target.inputs.to_dict(),
        "cold_start_ms": measurement.cold_start_ms, "latency_ms": stats.latency_dict(),
        "unreliable_percentiles": list(stats.unreliable_percentiles), "throughput_per_s": stats.throughput_per_s,
        "samples": stats.count, "session": measurement.session, "point": summary.to_dict()})
    return summary


def point_energy(telemetry: dict | None, device: Device, telemetry_hz: float | None
                 ) -> tuple[float | None, str | None, str | None]:
    """(joules, source, None) from the counters covering the point's device, else (None, None, why not).

    A CPU point counts the RAPL package zones (the whole package: other processes' work is included); a GPU
    point its NVML device. Other devices have no energy counter the studio reads.
    """
    if telemetry is None:
        return None, None, ("telemetry was off for this sweep" if not telemetry_hz
                            else "nothing was timed, so no energy was measured")
    devices = telemetry["devices"]
    if device.kind == "cpu":
        names = sorted(name for name in devices if name.startswith("rapl:package") and name.count(":") == 1)
        family = "rapl"
    elif device.kind == "gpu":
        names = [f"gpu{device.id.partition(':')[2] or 0}"]
        family = "gpu"
    else:
        return None, None, f"no energy counter covers {device.id} ({device.kind})"
    figures = [devices[name] for name in names if name in devices]
    if figures and all(figure["energy_j"] is not None for figure in figures):
        source = ", ".join(f"{f['device']} {f['energy_method']} ({f['energy_covers'] or f['energy_metric']})"
                           for f in figures)
        return sum(figure["energy_j"] for figure in figures), source, None
    reasons = [figure["unavailable"].get("energy_j") for figure in figures if figure["energy_j"] is None]
    reasons += [item["reason"] for item in telemetry["unavailable"]
                if item["device"].startswith(family) and item["name"] in ("energy", "*")]
    reasons = [reason for reason in dict.fromkeys(reasons) if reason]
    return None, None, "; ".join(reasons) or f"no energy counter covers {device.id}"


def record_failed_point(db: Database, sweep_id: int, backend: str | None, point: SweepPoint, handle: ModelHandle,
                        error: str) -> int:
    """A point that could not even start (no such provider, a batch the model refuses) still leaves a run."""
    run = {"device": point.provider, "backend": backend or handle.format.default_backend,
           "settings": {"batch": point.batch, "threads": point.threads, "recipe": point.recipe or "original"},
           "tags": sweep_tags(sweep_id), "notes": point.label(), "sweep_id": sweep_id, "sweep_point": point.key}
    recording = RunRecording.start(db, model_info(handle), run, None)
    return recording.finish("failed", error=error, summary={"point": PointSummary(point, "failed",
                                                                                  error=error).to_dict()}).id
