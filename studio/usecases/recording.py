"""Streams one benchmark run into storage while it runs: the row first, samples as they come, the outcome last.

This is the join between engine, profilers and storage (DESIGN §3): engine results and telemetry readings
become the plain values the storage writer takes. The writer reads the benchmark's sample buffer itself rather
than a copy of it, so a run holds each latency sample once. If the process dies mid-run, what the writer saved
(at most half a second behind) stays, and the next open marks the run interrupted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.device.environment import fingerprint
from engine.measure.samples import SampleBuffer
from engine.model.handle import ModelHandle
from profilers.sampler import TelemetryReading
from storage import EnergyFigure, ModelInfo, RunRecord, RunStart
from studio.usecases.bench_plan import BenchPlan

if TYPE_CHECKING:  # SQLAlchemy loads when a database is opened, not when the CLI starts
    from storage import Database, RunWriter


class RunRecording:
    def __init__(self, writer: RunWriter):
        self.writer = writer

    @property
    def run_id(self) -> int:
        return self.writer.run_id

    @classmethod
    def start(cls, db: Database, model: ModelInfo, run: dict, samples: SampleBuffer | None,
              batch_size: int = 1) -> RunRecording:
        """Registers the model and creates the run row (status running) before anything is timed.

        `run` holds RunStart's fields but the model id. With `samples`, the writer saves them from that buffer as
        they are taken; without, the caller appends them (`append_samples`) before finishing.
        """
        model_id = db.catalog.register_model(model)
        writer = db.runs.start_run(RunStart(model_id=model_id, **run))
        if samples is not None:
            writer.read_latency_from(samples, batch_size)
        return cls(writer)

    @classmethod
    def start_bench(cls, db: Database, plan: BenchPlan, settings: dict, samples: SampleBuffer, *,
                    tags: tuple[str, ...] = (), notes: str = "", sweep_id: int | None = None,
                    sweep_point: str | None = None, artifact_id: int | None = None) -> RunRecording:
        """A benchmark run of `plan`; a sweep's point runs carry the sweep's id and their point key."""
        device, runner, inputs = plan.device, plan.runner, plan.inputs
        run = {"device": device.id, "backend": runner.backend, "provider": runner.provider,
               "provider_options": dict(runner.options), "settings": {**settings, "inputs": inputs.to_dict()},
               "environment": fingerprint({"requested": runner.to_dict()}), "tags": tags, "notes": notes,
               "sweep_id": sweep_id, "sweep_point": sweep_point, "artifact_id": artifact_id}
        return cls.start(db, model_info(plan.handle), run, samples, inputs.batch_size)

    def append_samples(self, starts_ns, latencies_ns, batches) -> None:
        """Samples recorded apart from a live buffer (generation steps, with the tokens each produced)."""
        self.writer.append_latency(starts_ns, latencies_ns, batches=batches)

    def on_telemetry(self, readings: Sequence[TelemetryReading]) -> None:
        """A sampler subscriber: every reading goes to storage as it is taken."""
        for reading in readings:
            for key, value in reading.values.items():
                device, _, metric = key.partition("/")
                self.writer.append_telemetry(metric, device, [reading.t_ns], [value])

    def finish(self, status: str, *, summary: dict | None = None, telemetry: dict | None = None,
               error: str | None = None) -> RunRecord:
        """Saves the last samples and the outcome; storage errors propagate with the samples kept."""
        return self.writer.finish(status, summary=summary, telemetry_summary=telemetry,
                                  energy=energy_figures(telemetry), error=error)


def model_info(handle: ModelHandle) -> ModelInfo:
    """The catalog entry of an opened model: what identifies it (sha256) and its input/output signature."""
    return ModelInfo(path=str(handle.path), sha256=handle.sha256, format=handle.format.value,
                     size_bytes=handle.size_bytes, io_signature={"inputs": [s.to_dict() for s in handle.inputs],
                                                                 "outputs": [s.to_dict() for s in handle.outputs]})


def energy_figures(telemetry: dict | None) -> list[EnergyFigure]:
    """Energy per device from the telemetry summary, and a reason for each device whose energy is unmeasurable."""
    if telemetry is None:
        return []
    figures = []
    for device, summary in telemetry["devices"].items():
        if summary["energy_j"] is not None:
            source = f"{summary['energy_method']} ({summary['energy_metric']})"
            figures.append(EnergyFigure(device, source, summary["energy_per_inference_j"], summary["energy_j"]))
    for item in telemetry["unavailable"]:
        if item["name"] in ("energy", "*"):
            figures.append(EnergyFigure(item["device"], "", None, unavailable_reason=item["reason"]))
    return figures
