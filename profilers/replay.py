"""Recording telemetry to a file and playing it back, for demos, tests and bug reports.

The format is JSON Lines: a header (`format`, `version`, the metric specs and the unavailable
reasons of the recording machine), then one `{"t_ns": ..., "values": {...}}` line per source
reading. Replayed data is always labelled: the source is named `replay:<file>`, is not live
(`live=False`, so the UI and snapshot never present it as live) and every metric note says
"replay". Playback follows the recorded timing relative to the first `read`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO

import numpy as np

from profilers.errors import TelemetryFileError
from profilers.metrics import MetricSpec, SourceCapabilities, UnavailableMetric
from profilers.source import TelemetrySource

FORMAT = "autoglm-telemetry"
VERSION = 1
REPLAY_LABEL = "replay"


class TelemetryRecorder:
    """A sampler subscriber writing every reading to a telemetry file (`sampler.subscribe(recorder)`)."""

    def __init__(self, path: Path, specs: dict[str, MetricSpec], unavailable: Sequence[UnavailableMetric] = (),
                 hz: float | None = None):
        self.path = Path(path)
        self._handle: IO[str] | None = open(self.path, "w", encoding="utf-8")
        header = {"format": FORMAT, "version": VERSION, "hz": hz, "metrics": [s.to_dict() for s in specs.values()],
                  "unavailable": [u.to_dict() for u in unavailable]}
        self._handle.write(json.dumps(header) + "\n")

    def __call__(self, readings) -> None:
        if self._handle is None:
            return
        for reading in readings:
            values = {key: value for key, value in reading.values.items() if math.isfinite(value)}
            self._handle.write(json.dumps({"t_ns": reading.t_ns, "source": reading.source, "values": values}) + "\n")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _load(path: Path) -> tuple[dict, np.ndarray, list[dict[str, float]]]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as error:
        raise TelemetryFileError(f"telemetry recording {path} does not exist") from error
    except (OSError, UnicodeDecodeError) as error:
        raise TelemetryFileError(f"telemetry recording {path} cannot be read: {error}") from error
    if not lines:
        raise TelemetryFileError(f"telemetry recording {path} is empty")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError as error:
        raise TelemetryFileError(f"{path} is not a telemetry recording (first line is not JSON)") from error
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise TelemetryFileError(f"{path} is not a telemetry recording (no '{FORMAT}' header)")
    if header.get("version") != VERSION:
        raise TelemetryFileError(f"{path} has telemetry format version {header.get('version')}; this studio reads "
                                 f"version {VERSION}, update the studio to replay it")
    times, frames = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            times.append(int(record["t_ns"]))
            frames.append({str(key): float(value) for key, value in record["values"].items()})
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
            raise TelemetryFileError(f"{path} line {number} is damaged ({type(error).__name__}: {error}); "
                                     f"truncate the file before that line to replay the rest") from error
    t_ns = np.asarray(times, dtype=np.int64)
    if len(t_ns) and np.any(np.diff(t_ns) < 0):
        raise TelemetryFileError(f"{path} has timestamps that go backwards; it was not written by the sampler")
    return header, t_ns, frames


class ReplaySource(TelemetrySource):
    """Plays a telemetry recording. `loop=True` restarts it at the end (cumulative counters keep growing)."""

    live = False

    def __init__(self, path: Path, loop: bool = False, clock: Callable[[], int] = time.perf_counter_ns):
        self.path = Path(path)
        self.name = f"{REPLAY_LABEL}:{self.path.name}"
        self._loop = loop
        self._clock = clock
        self._t_ns = np.zeros(0, dtype=np.int64)
        self._frames: list[dict[str, float]] = []
        self._growth: dict[str, float] = {}  # per-loop increase of each cumulative counter
        self._started_ns: int | None = None
        self._position = 0  # next frame to play, counted across loops
        self.finished = False

    def open(self) -> SourceCapabilities:
        header, self._t_ns, self._frames = _load(self.path)
        try:
            specs = [MetricSpec.from_dict(item) for item in header.get("metrics", [])]
            unavailable = [UnavailableMetric.from_dict(item) for item in header.get("unavailable", [])]
        except (KeyError, TypeError, ValueError) as error:
            raise TelemetryFileError(f"{self.path} has a damaged header ({type(error).__name__}: {error})") from error
        labelled = [replace(spec, note=f"{REPLAY_LABEL} of {self.path.name}" + (f"; {spec.note}" if spec.note else ""))
                    for spec in specs]
        self._growth = {spec.key: self._cumulative_growth(spec.key) for spec in specs if spec.cumulative}
        self._started_ns, self._position, self.finished = None, 0, False
        caps = SourceCapabilities(self.name, labelled, unavailable, live=False)
        if not len(self._t_ns):
            caps.unavailable.append(UnavailableMetric("*", REPLAY_LABEL, f"{self.path.name} holds no samples"))
            caps.metrics = []
        return caps

    def read(self) -> dict[str, float]:
        now = self._clock()
        if self._started_ns is None:
            self._started_ns = now
        count = len(self._t_ns)
        if count == 0 or self.finished:
            return {}
        duration = int(self._t_ns[-1] - self._t_ns[0])
        # One loop lasts the recording plus one median sample gap, so the last and first frames do not collide.
        gap = int(np.median(np.diff(self._t_ns))) if count > 1 else 1
        period = max(1, duration + gap)
        elapsed = now - self._started_ns
        values: dict[str, float] = {}
        while True:
            loop_index, index = divmod(self._position, count)
            if not self._loop and loop_index > 0:
                self.finished = True
                break
            offset = loop_index * period + int(self._t_ns[index] - self._t_ns[0])
            if offset > elapsed:
                break
            for key, value in self._frames[index].items():
                values[key] = value + loop_index * self._growth.get(key, 0.0)
            self._position += 1
        return values

    def _cumulative_growth(self, key: str) -> float:
        """How much a counter grows over one pass of the recording, added per loop so it never goes back."""
        seen = [frame[key] for frame in self._frames if key in frame]
        return seen[-1] - seen[0] if len(seen) > 1 else 0.0
