"""Streams one benchmark run into storage while it runs: the row first, samples as they come, the outcome last.

This is the join between engine, profilers and storage (DESIGN §3): engine results and
telemetry readings become the plain values the storage writer takes. If the process dies
mid-run, what was forwarded is already flushed, and the next open marks the run interrupted.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.device.environment import fingerprint
from engine.measure.samples import SampleBuffer
from profilers.sampler import TelemetryReading
from storage import EnergyFigure, ModelInfo, RunStart

if TYPE_CHECKING:
    from storage import Database, RunRecord, RunWriter
    from studio.usecases.benchmark import BenchPlan

FORWARD_INTERVAL_S = 0.25  # the writer flushes at least every 0.5 s; samples reach it twice as often


class RunRecording:
    def __init__(self, writer: RunWriter, samples: SampleBuffer | None, batch_size: int):
        self.writer = writer
        self._samples = samples
        self._batch_size = batch_size
        self._forwarded = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._forward_loop, name="run-sample-forwarder", daemon=True)

    @property
    def run_id(self) -> int:
        return self.writer.run_id

    @classmethod
    def start(cls, db: Database, model: ModelInfo, run: dict, samples: SampleBuffer | None,
              batch_size: int = 1) -> RunRecording:
        """Registers the model and creates the run row (status running) before anything is timed.

        `run` holds RunStart's fields but the model id. With `samples`, new samples are forwarded to storage as
        they are taken; without, the caller appends them (`append_samples`) before finishing.
        """
        model_id = db.catalog.register_model(model)
        writer = db.runs.start_run(RunStart(model_id=model_id, **run))
        recording = cls(writer, samples, batch_size)
        if samples is not None:
            recording._thread.start()
        return recording

    @classmethod
    def start_bench(cls, db: Database, plan: BenchPlan, settings: dict, samples: SampleBuffer, *,
                    tags: tuple[str, ...] = (), notes: str = "", sweep_id: int | None = None,
                    sweep_point: str | None = None, artifact_id: int | None = None) -> RunRecording:
        """A benchmark run of `plan`; a sweep's point runs carry the sweep's id and their point key."""
        handle, device, runner, inputs = plan.handle, plan.device, plan.runner, plan.inputs
        model = ModelInfo(
            path=str(handle.path), sha256=handle.sha256, format=handle.format.value, size_bytes=handle.size_bytes,
            io_signature={"inputs": [s.to_dict() for s in handle.inputs], "outputs": [s.to_dict() for s in handle.outputs]},
        )
        run = {"device": device.id, "backend": runner.backend, "provider": runner.provider,
               "provider_options": dict(runner.options), "settings": {**settings, "inputs": inputs.to_dict()},
               "environment": fingerprint({"requested": runner.to_dict()}), "tags": tags, "notes": notes,
               "sweep_id": sweep_id, "sweep_point": sweep_point, "artifact_id": artifact_id}
        return cls.start(db, model, run, samples, inputs.batch_size)

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
        """Forwards the last samples and saves the outcome; storage errors propagate with the samples kept."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._forward()
        return self.writer.finish(status, summary=summary, telemetry_summary=telemetry,
                                  energy=energy_figures(telemetry), error=error)

    def _forward_loop(self) -> None:
        while not self._stop.wait(FORWARD_INTERVAL_S):
            self._forward()

    def _forward(self) -> None:
        if self._samples is None:
            return
        starts, latencies = self._samples.snapshot(since=self._forwarded)
        if len(starts):
            self.writer.append_latency(starts, latencies, batches=self._batch_size)
            self._forwarded += len(starts)


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
