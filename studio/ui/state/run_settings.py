"""Where and how a benchmark runs, as the Run settings page shows it and as the use cases take it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from engine.backends import BackendOptions
from engine.backends.base import GRAPH_OPTIMIZATION_LEVELS
from engine.measure.runner import BenchmarkSettings
from engine.measure.scenarios import ScenarioSettings

# What survives a restart, under the keys earlier versions saved it with.
SAVED_FIELDS = {"threads": "threads", "batch": "batch", "warmup": "warmup", "iterations": "iterations",
                "telemetry_hz": "telemetry_hz", "duration": "duration_s", "graph_level": "graph_level"}


@dataclass(frozen=True)
class RunSettings:
    device: str = "cpu"
    backend: str | None = None  # None: the model format's natural backend
    threads: int = 0  # 0: the runtime's default
    batch: int = 1
    warmup: int = 10
    iterations: int = 100
    duration_s: float = 5.0
    telemetry_hz: int = 10  # 0: off
    scenario: str | None = None  # a LoadGen scenario name; None: the plain timed loop
    rate_qps: float = 100.0  # server scenario only
    latency_bound_ms: float = 20.0  # server scenario only
    graph_level: str = "all"
    compare_seconds: float = 1.0  # per model and round, for an optimized model's before/after latency

    def backend_options(self) -> BackendOptions:
        return BackendOptions(threads=self.threads or None, graph_optimization_level=self.graph_level)

    def benchmark_settings(self) -> BenchmarkSettings:
        return BenchmarkSettings(warmup=self.warmup, min_iterations=self.iterations, min_duration_s=self.duration_s)

    def scenario_settings(self) -> ScenarioSettings | None:
        """The chosen LoadGen scenario, on the same minimums and warm-up as the plain loop; None for the plain loop."""
        if self.scenario is None:
            return None
        server = self.scenario == "server"
        return ScenarioSettings(scenario=self.scenario, min_duration_s=self.duration_s, min_queries=self.iterations,
                                warmup=self.warmup, target_qps=self.rate_qps if server else None,
                                latency_bound_ms=self.latency_bound_ms if server else None)

    def saved(self) -> dict[str, object]:
        return {key: getattr(self, name) for key, name in SAVED_FIELDS.items()}

    def restored(self, saved: Mapping[str, object]) -> RunSettings:
        """These settings with what an earlier session saved (settings files hold text: values are converted)."""
        changes = {}
        for key, name in SAVED_FIELDS.items():
            value = saved.get(key)
            if value is not None:
                changes[name] = type(getattr(self, name))(value)
        if changes.get("graph_level", self.graph_level) not in GRAPH_OPTIMIZATION_LEVELS:
            del changes["graph_level"]
        return replace(self, **changes)
