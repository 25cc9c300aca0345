"""The telemetry sampler: one thread reading every source at a fixed rate into ring buffers.

Follows the house pattern (DESIGN §5): the thread waits on an Event between ticks and leaves its
loop when a flag is set; `stop` sets the flag, wakes it and joins. Threads are never killed.
Timestamps are `time.perf_counter_ns`, the clock the benchmark runner stamps latency samples
with, so telemetry and latency line up without conversion. A source that raises is marked
failed with its error and no longer read; the others go on. The GUI polls `snapshot` from a
timer; the storage writer `subscribe`s and gets every reading once, on the sampler thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from profilers.errors import (
    SamplerConfigError,
    SamplerStateError,
    SamplerStopTimeoutError,
    TelemetryError,
)
from profilers.metrics import MetricSpec, SourceCapabilities, UnavailableMetric
from profilers.ring_buffer import MetricSeries, RingBuffer
from profilers.source import SourceState, SourceStatus, TelemetrySource

MIN_HZ, MAX_HZ, DEFAULT_HZ = 1.0, 100.0, 10.0
DEFAULT_BUFFER_SECONDS = 600.0
STOP_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class TelemetryReading:
    """What one source gave in one tick. `t_ns` is the midpoint of its read, on the perf_counter_ns clock."""

    source: str
    t_ns: int
    values: dict[str, float]
    live: bool = True


@dataclass(frozen=True)
class TelemetrySnapshot:
    """A consistent copy of everything the sampler holds, safe to use from any thread."""

    specs: dict[str, MetricSpec]
    series: dict[str, MetricSeries]
    statuses: dict[str, SourceStatus]
    unavailable: list[UnavailableMetric]
    taken_ns: int
    overwritten: dict[str, int] = field(default_factory=dict)  # samples per metric lost to ring wrap-around

    @property
    def live(self) -> bool:
        """False as soon as any producing source replays recorded data: never show it as live."""
        return all(status.live for status in self.statuses.values() if status.state is SourceState.ACTIVE)


Subscriber = Callable[[Sequence[TelemetryReading]], None]


class Subscription:
    def __init__(self, sampler: TelemetrySampler, callback: Subscriber):
        self._sampler, self.callback = sampler, callback

    def cancel(self) -> None:
        self._sampler._unsubscribe(self)


class TelemetrySampler:
    """Samples `sources` at `hz` (1-100, default 10) into preallocated per-metric ring buffers.

    Life cycle: `prepare()` opens the sources (slow: driver init) and allocates buffers, `start()`
    launches the thread (fast), `stop()` ends it, `close()` releases the sources. The context
    manager does prepare/start and stop/close.
    """

    def __init__(self, sources: Sequence[TelemetrySource], hz: float = DEFAULT_HZ,
                 buffer_seconds: float = DEFAULT_BUFFER_SECONDS, clock: Callable[[], int] = time.perf_counter_ns):
        if not MIN_HZ <= hz <= MAX_HZ:
            raise SamplerConfigError(f"telemetry rate must be between {MIN_HZ:g} and {MAX_HZ:g} Hz, got {hz:g}")
        if buffer_seconds <= 0:
            raise SamplerConfigError(f"telemetry buffer must hold a positive duration, got {buffer_seconds:g} s")
        names = [source.name for source in sources]
        if len(set(names)) != len(names):
            raise SamplerConfigError(f"telemetry source names must be unique, got {names}")
        self.hz = float(hz)
        self._period_ns = int(round(1e9 / self.hz))
        self._capacity = max(2, int(round(buffer_seconds * self.hz)))
        self._sources = list(sources)
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._thread_error: Exception | None = None
        self._prepared = False
        self._specs: dict[str, MetricSpec] = {}
        self._buffers: dict[str, RingBuffer] = {}
        self._capabilities: dict[str, SourceCapabilities] = {}
        self._statuses: dict[str, SourceStatus] = {s.name: SourceStatus(s.name, SourceState.PENDING, s.live)
                                                   for s in self._sources}
        self._subscriptions: list[Subscription] = []
        self.subscriber_errors: list[str] = []
        self.ticks = 0
        self.late_ticks = 0  # ticks that started after their slot (a slow source): visible in diagnostics

    # -- life cycle ---------------------------------------------------------------------------------------
    def prepare(self) -> dict[str, SourceCapabilities]:
        """Open every source and allocate its buffers. Idempotent; `start` calls it when needed."""
        if self._prepared:
            return dict(self._capabilities)
        for source in self._sources:
            try:
                caps = source.open()
            except Exception as error:  # isolation: one broken source must not stop telemetry
                self._mark_failed(source, error)
                continue
            clashes = [spec.key for spec in caps.metrics if spec.key in self._specs]
            if clashes:
                self._mark_failed(source, SamplerConfigError(
                    f"{source.name} produces {', '.join(clashes)}, already produced by another source; "
                    f"give the sources distinct device names"))
                continue
            self._capabilities[source.name] = caps
            state = SourceState.ACTIVE if caps.metrics else SourceState.UNAVAILABLE
            self._statuses[source.name] = SourceStatus(source.name, state, source.live)
            for spec in caps.metrics:
                self._specs[spec.key] = spec
                self._buffers[spec.key] = RingBuffer(self._capacity)
        self._prepared = True
        return dict(self._capabilities)

    def start(self) -> None:
        if self._thread is not None:
            raise SamplerStateError("the telemetry sampler is already running; stop it before starting again")
        self.prepare()
        self._stopping = False
        self._wake.clear()
        self._thread = threading.Thread(target=self._run, name="telemetry-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to finish and wait for it (one tick at most). Safe to call when not running."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._wake.set()
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            raise SamplerStopTimeoutError(
                f"the telemetry sampler did not stop within {STOP_TIMEOUT_S:g} s; a source read is blocked "
                f"({', '.join(self._active_names()) or 'no active source'}). It will exit after that read returns.")
        self._thread = None
        if self._thread_error is not None:
            error, self._thread_error = self._thread_error, None
            raise TelemetryError(f"the telemetry sampler thread stopped early: {type(error).__name__}: {error}") \
                from error

    def close(self) -> None:
        """Stop and close every source; the first error from a `close` is raised after all were closed."""
        self.stop()
        first_error: BaseException | None = None
        for source in self._sources:
            try:
                source.close()
            except Exception as error:
                first_error = first_error or error
            with self._lock:
                if self._statuses[source.name].state is not SourceState.FAILED:
                    self._statuses[source.name] = SourceStatus(source.name, SourceState.CLOSED, source.live)
        if first_error is not None:
            raise first_error

    @property
    def running(self) -> bool:
        """True while the thread samples; False once stopped or if it died (then `stop()` raises why)."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> TelemetrySampler:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- sampling -------------------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except Exception as error:  # kept for stop() to raise on the caller's thread, where the user sees it
            self._thread_error = error

    def _loop(self) -> None:
        next_tick = self._clock()
        while not self._stopping:
            self.sample_once()
            next_tick += self._period_ns
            now = self._clock()
            if next_tick < now:  # a slow tick: skip the missed slots instead of bursting to catch up
                self.late_ticks += 1
                next_tick = now
            self._wake.wait((next_tick - now) / 1e9)

    def sample_once(self) -> list[TelemetryReading]:
        """Read every active source once and publish the readings. The thread calls it; tests may too."""
        if not self._prepared:
            raise SamplerStateError("prepare() the telemetry sampler before sampling")
        readings: list[TelemetryReading] = []
        for source in self._sources:
            if self._statuses[source.name].state is not SourceState.ACTIVE:
                continue
            before = self._clock()
            try:
                values = source.read()
                known = {key: float(value) for key, value in values.items() if key in self._specs}
            except Exception as error:  # isolation: marked failed with its error, shown to the user
                self._mark_failed(source, error)
                continue
            t_ns = (before + self._clock()) // 2
            if known:
                readings.append(TelemetryReading(source.name, t_ns, known, source.live))
        with self._lock:
            for reading in readings:
                for key, value in reading.values.items():
                    self._buffers[key].append(reading.t_ns, value)
            self.ticks += 1
            subscriptions = list(self._subscriptions)
        if readings:
            for subscription in subscriptions:
                try:
                    subscription.callback(readings)
                except Exception as error:  # a broken subscriber is dropped and reported, never retried silently
                    self._unsubscribe(subscription)
                    self.subscriber_errors.append(f"{getattr(subscription.callback, '__qualname__', 'subscriber')}: "
                                                  f"{type(error).__name__}: {error}")
        return readings

    def _mark_failed(self, source: TelemetrySource, error: BaseException) -> None:
        status = SourceStatus(source.name, SourceState.FAILED, source.live, error=f"{type(error).__name__}: {error}",
                              failed_at_ns=self._clock())
        with self._lock:
            self._statuses[source.name] = status

    def _active_names(self) -> list[str]:
        return [name for name, status in self._statuses.items() if status.state is SourceState.ACTIVE]

    # -- consumers ------------------------------------------------------------------------------------------
    def subscribe(self, callback: Subscriber) -> Subscription:
        """`callback(readings)` runs on the sampler thread after every tick with data; keep it short
        (append to a batch). A callback that raises is unsubscribed and listed in `subscriber_errors`."""
        subscription = Subscription(self, callback)
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    def snapshot(self, since_ns: int | None = None) -> TelemetrySnapshot:
        """Copies of the buffers (only samples at or after `since_ns` when given) with specs and statuses."""
        with self._lock:
            series = {key: buffer.series(since_ns) for key, buffer in self._buffers.items()}
            overwritten = {key: buffer.overwritten for key, buffer in self._buffers.items() if buffer.overwritten}
        return TelemetrySnapshot(specs=dict(self._specs), series=series, statuses=dict(self._statuses),
                                 unavailable=self.unavailable(), taken_ns=self._clock(), overwritten=overwritten)

    def unavailable(self) -> list[UnavailableMetric]:
        """Every metric the sources said they cannot give, plus one entry per failed source."""
        result = [item for caps in self._capabilities.values() for item in caps.unavailable]
        for status in self._statuses.values():
            if status.state is SourceState.FAILED:
                result.append(UnavailableMetric("*", status.source, f"source failed: {status.error}"))
        return result

    @property
    def specs(self) -> dict[str, MetricSpec]:
        return dict(self._specs)

    @property
    def statuses(self) -> dict[str, SourceStatus]:
        return dict(self._statuses)
