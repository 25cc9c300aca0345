"""CPU and memory telemetry through psutil: utilisation (system, per core, this process), frequency,
load average, process RSS and peak RSS, and system memory in use.

Utilisation is a share of time since the previous reading, so `open` primes the counters; the
first `read` then covers the time between `open` and that read instead of reporting a meaningless
initial 0.0 (which is what psutil.cpu_percent() returns on its first call).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import psutil

from profilers import metrics
from profilers.metrics import (
    MetricKind,
    MetricSpec,
    SourceCapabilities,
    UnavailableMetric,
)
from profilers.source import TelemetrySource

PROCESS_CPU = metrics.PROCESS_CPU
LOAD_1M = "load_1m"
PROCESS_RSS = "process_rss"
PROCESS_PEAK_RSS = "process_peak_rss"


def _peak_rss_bytes() -> float:
    """Peak resident set size of this process as the kernel counts it (ru_maxrss: KiB on Linux, bytes on macOS)."""
    import resource  # POSIX only; Windows goes through psutil's peak_wset instead

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(peak if sys.platform == "darwin" else peak * 1024)


def _busy_time(times) -> tuple[float, float]:
    """(busy, total) seconds of one cpu_times entry; guest time is already inside user/nice on Linux."""
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


def _busy_percent(before, after) -> float | None:
    busy_before, total_before = _busy_time(before)
    busy_after, total_after = _busy_time(after)
    elapsed = total_after - total_before
    if elapsed <= 0:
        return None
    return min(100.0, max(0.0, 100.0 * (busy_after - busy_before) / elapsed))


class CpuSource(TelemetrySource):
    name = "cpu"

    def __init__(self, pid: int | None = None):
        self._pid = pid
        self._process: psutil.Process | None = None
        self._reads: list[Callable[[dict[str, float]], None]] = []
        self._last_cpu_times: list | None = None

    def open(self) -> SourceCapabilities:
        caps = SourceCapabilities(self.name)
        process = self._process = psutil.Process(self._pid)
        self._reads = []

        def add(specs: list[MetricSpec], probe: Callable[[], object], fill: Callable[[dict[str, float]], None],
                what: str) -> None:
            try:
                probe()
            except (OSError, AttributeError, NotImplementedError, psutil.Error) as error:
                reason = f"{what} not available from psutil on this system ({type(error).__name__}: {error})"
                caps.unavailable.extend(UnavailableMetric(s.name, s.device, reason) for s in specs)
                return
            self._reads.append(fill)
            caps.metrics.extend(specs)

        cores = psutil.cpu_count(logical=True) or 0
        core_specs = [MetricSpec(f"core{i}_{metrics.UTILISATION}", "%", "cpu", MetricKind.MEASURED)
                      for i in range(cores)]

        def fill_utilisation(values: dict[str, float]) -> None:
            per_core = self._core_utilisation()
            for index, value in enumerate(per_core[:cores]):
                if value is not None:
                    values[f"cpu/core{index}_{metrics.UTILISATION}"] = value
            measured = [value for value in per_core if value is not None]
            if measured:
                values[f"cpu/{metrics.UTILISATION}"] = sum(measured) / len(measured)

        add([MetricSpec(metrics.UTILISATION, "%", "cpu", MetricKind.MEASURED, note="all logical cores"), *core_specs],
            self._core_utilisation, fill_utilisation, "CPU utilisation")

        add([MetricSpec(PROCESS_CPU, "%", "process", MetricKind.MEASURED,
                        note="this process; 100% is one full core")],
            process.cpu_percent, lambda values: values.__setitem__(f"process/{PROCESS_CPU}", process.cpu_percent()),
            "process CPU")

        def probe_frequency() -> None:
            if psutil.cpu_freq() is None:
                raise NotImplementedError("psutil.cpu_freq() returned None (no cpufreq interface)")

        def fill_frequency(values: dict[str, float]) -> None:
            frequency = psutil.cpu_freq()
            if frequency is not None and frequency.current > 0:
                values[f"cpu/{metrics.FREQUENCY}"] = float(frequency.current)

        add([MetricSpec(metrics.FREQUENCY, "MHz", "cpu", MetricKind.MEASURED,
                        note="mean current frequency of all cores")],
            probe_frequency, fill_frequency, "CPU frequency")

        add([MetricSpec(LOAD_1M, "", "cpu", MetricKind.MEASURED, note="1-minute load average (runnable tasks)")],
            psutil.getloadavg, lambda values: values.__setitem__(f"cpu/{LOAD_1M}", float(psutil.getloadavg()[0])),
            "load average")

        add([MetricSpec(PROCESS_RSS, "B", "process", MetricKind.MEASURED)], process.memory_info,
            lambda values: values.__setitem__(f"process/{PROCESS_RSS}", float(process.memory_info().rss)),
            "process RSS")

        peak = self._peak_rss_reader(process)

        def fill_peak(values: dict[str, float]) -> None:
            # Linux syncs per-thread RSS counters lazily, so the high-water mark can trail the RSS just read.
            rss = values.get(f"process/{PROCESS_RSS}")
            values[f"process/{PROCESS_PEAK_RSS}"] = peak() if rss is None else max(peak(), rss)

        add([MetricSpec(PROCESS_PEAK_RSS, "B", "process", MetricKind.MEASURED,
                        note="peak resident set size since the process started, as the OS counts it "
                             "(never below the RSS of the same sample)")],
            peak, fill_peak, "process peak RSS")

        add([MetricSpec(metrics.MEMORY_USED, "B", "memory", MetricKind.MEASURED, note="system memory in use")],
            psutil.virtual_memory,
            lambda values: values.__setitem__(f"memory/{metrics.MEMORY_USED}", float(psutil.virtual_memory().used)),
            "system memory")
        return caps

    def _core_utilisation(self) -> list[float | None]:
        """Busy share of each logical CPU since the previous call, from psutil.cpu_times deltas.

        Computed here rather than with psutil.cpu_percent(), whose "since the last call" state is global to
        the process: any other caller (an environment fingerprint, a library) would silently shorten our
        interval. None for a core whose counters did not advance (no time passed).
        """
        now = psutil.cpu_times(percpu=True)
        previous, self._last_cpu_times = self._last_cpu_times, now
        if previous is None or len(previous) != len(now):
            return [None] * len(now)
        return [_busy_percent(before, after) for before, after in zip(previous, now, strict=True)]

    def _peak_rss_reader(self, process: psutil.Process) -> Callable[[], float]:
        if self._pid is not None and self._pid != psutil.Process().pid:
            def other_process_peak() -> float:
                info = process.memory_info()
                peak = getattr(info, "peak_wset", None)
                if peak is None:
                    raise NotImplementedError("peak RSS of another process is only reported on Windows")
                return float(peak)
            return other_process_peak
        if sys.platform == "win32":
            return lambda: float(process.memory_info().peak_wset)
        return _peak_rss_bytes

    def read(self) -> dict[str, float]:
        values: dict[str, float] = {}
        for fill in self._reads:
            fill(values)
        return values

    def close(self) -> None:
        self._reads = []
        self._process = None
