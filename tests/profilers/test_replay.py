"""Recording telemetry to a file and replaying it, always labelled as a replay."""

from __future__ import annotations

import json

import pytest

from profilers.errors import TelemetryFileError
from profilers.metrics import (
    MetricKind,
    MetricSpec,
    SourceCapabilities,
    UnavailableMetric,
)
from profilers.replay import ReplaySource, TelemetryRecorder
from profilers.sampler import TelemetrySampler
from profilers.source import TelemetrySource

MS = 1_000_000


class PowerSource(TelemetrySource):
    """A board drawing 100 W more each read, with an energy counter that follows."""

    name = "board"

    def __init__(self):
        self.reads = 0

    def open(self) -> SourceCapabilities:
        return SourceCapabilities(self.name, [
            MetricSpec("power", "W", "gpu0", MetricKind.MEASURED),
            MetricSpec("energy", "J", "gpu0", MetricKind.MEASURED, cumulative=True, note="counter")],
            [UnavailableMetric("fan", "gpu0", "fan speed is not supported by this GPU")])

    def read(self) -> dict[str, float]:
        self.reads += 1
        return {"gpu0/power": 100.0 * self.reads, "gpu0/energy": 10.0 * self.reads}


class ManualClock:
    def __init__(self):
        self.now = 0

    def __call__(self) -> int:
        return self.now


def _record(path, reads: int = 3):
    clock = iter(range(0, 10**12, 50 * MS))  # each read spans one step: midpoints 100 ms apart
    sampler = TelemetrySampler([PowerSource()], clock=lambda: next(clock))
    sampler.prepare()
    recorder = TelemetryRecorder(path, sampler.specs, sampler.unavailable(), hz=sampler.hz)
    sampler.subscribe(recorder)
    for _ in range(reads):
        sampler.sample_once()
    recorder.close()
    sampler.close()


def test_recording_replays_with_its_timing_and_replay_label(tmp_path):
    # setup
    path = tmp_path / "run.telemetry.jsonl"
    _record(path)
    clock = ManualClock()
    source = ReplaySource(path, clock=clock)
    # execute
    caps = source.open()
    first = source.read()  # the first read starts playback at the first recorded frame
    clock.now = 50 * MS
    nothing_yet = source.read()
    clock.now = 100 * MS
    second = source.read()
    clock.now = 10_000 * MS
    rest = source.read()
    after_end = source.read()
    # assert
    assert source.name == "replay:run.telemetry.jsonl" and not caps.live and not source.live
    assert all(spec.note.startswith("replay of run.telemetry.jsonl") for spec in caps.metrics)
    assert caps.unavailable == [UnavailableMetric("fan", "gpu0", "fan speed is not supported by this GPU")]
    assert first == {"gpu0/power": 100.0, "gpu0/energy": 10.0}
    assert nothing_yet == {}
    assert second == {"gpu0/power": 200.0, "gpu0/energy": 20.0}
    assert rest == {"gpu0/power": 300.0, "gpu0/energy": 30.0}
    assert after_end == {} and source.finished


def test_looping_replay_keeps_counters_growing(tmp_path):
    # setup
    path = tmp_path / "loop.jsonl"
    _record(path)
    clock = ManualClock()
    source = ReplaySource(path, loop=True, clock=clock)
    source.open()
    # execute
    source.read()
    clock.now = 300 * MS  # one pass lasts 200 ms of frames + one 100 ms gap
    again = source.read()
    # assert
    assert again["gpu0/power"] == 100.0
    assert again["gpu0/energy"] == pytest.approx(10.0 + 20.0)  # first value plus one pass of growth


def test_replayed_snapshot_is_never_live(tmp_path):
    # setup
    path = tmp_path / "demo.jsonl"
    _record(path)
    sampler = TelemetrySampler([ReplaySource(path, clock=ManualClock())])
    sampler.prepare()
    # execute
    readings = sampler.sample_once()
    snapshot = sampler.snapshot()
    sampler.close()
    # assert
    assert not snapshot.live
    assert readings and not readings[0].live


@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    ("not json\n", "not a telemetry recording"),
    ('{"format": "something-else"}\n', "not a telemetry recording"),
    ('{"format": "autoglm-telemetry", "version": 99}\n', "version 99"),
    ('{"format": "autoglm-telemetry", "version": 1, "metrics": []}\n{"t_ns": 5, "values": {"a/b": 1}}\n{"t_n',
     "line 3"),
    ('{"format": "autoglm-telemetry", "version": 1, "metrics": []}\n{"t_ns": 5, "values": {}}\n'
     '{"t_ns": 1, "values": {}}\n', "backwards"),
])
def test_damaged_recordings_are_refused_with_a_reason(tmp_path, content, message):
    # setup
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    # execute / assert
    with pytest.raises(TelemetryFileError, match=message):
        ReplaySource(path).open()


def test_missing_recording(tmp_path):
    with pytest.raises(TelemetryFileError, match="does not exist"):
        ReplaySource(tmp_path / "nope.jsonl").open()


def test_recording_header_lists_specs(tmp_path):
    # setup
    path = tmp_path / "run.jsonl"
    # execute
    _record(path, reads=1)
    header, line = [json.loads(text) for text in path.read_text().splitlines()]
    # assert
    assert header["format"] == "autoglm-telemetry" and header["hz"] == 10.0
    assert {m["name"] for m in header["metrics"]} == {"power", "energy"}
    assert line["source"] == "board" and line["values"] == {"gpu0/power": 100.0, "gpu0/energy": 10.0}
