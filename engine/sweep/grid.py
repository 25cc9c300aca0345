"""A grid of configurations (batch × threads × provider × recipe) measured point by point, resumably.

The order is shuffled with a seed, so slow drift of the machine (heat, background load) spreads over the grid
instead of following one axis of it. Each point has a stable key; given the keys already measured (from
storage, after an interruption), only the rest run. Storage-free: the caller decides how a point is measured
(`engine.sweep.points.measure_point`, wrapped by the studio with telemetry and run recording) and where
summaries go (`on_point`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from core.progress import Progress
from engine.errors import EngineError, InputError
from engine.measure.adaptive_stopping import StoppingRule

ORIGINAL_MODEL = None  # the recipe label of the unoptimized model


@dataclass(frozen=True)
class SweepPoint:
    provider: str  # a device id ("cpu", "cuda:0", "npu") or an ONNX Runtime provider name
    recipe: str | None  # a recipe's label (e.g. its file name); None is the original model
    batch: int
    threads: int | None  # intra-op threads; None leaves the runtime's default

    @property
    def key(self) -> str:
        """Stable across runs and machines, so a resumed sweep recognises points stored earlier."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_key(cls, key: str) -> SweepPoint:
        return cls(**json.loads(key))

    def label(self) -> str:
        threads = "default" if self.threads is None else str(self.threads)
        return f"{self.provider} {self.recipe or 'original'} batch {self.batch} threads {threads}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SweepGrid:
    batches: tuple[int, ...]
    threads: tuple[int | None, ...] = (None,)
    providers: tuple[str, ...] = ("cpu",)
    recipes: tuple[str | None, ...] = (ORIGINAL_MODEL,)

    def __post_init__(self) -> None:
        for name in ("batches", "threads", "providers", "recipes"):
            values = getattr(self, name)
            if not values:
                raise InputError(f"a sweep needs at least one value for {name}")
            if len(set(values)) != len(values):
                raise InputError(f"{name} lists a value twice: {', '.join(map(str, values))}")
        if any(b < 1 for b in self.batches) or any(t is not None and t < 1 for t in self.threads):
            raise InputError("batch sizes and thread counts must be at least 1")

    def points(self) -> list[SweepPoint]:
        """Every combination, in grid order."""
        return [SweepPoint(provider, recipe, batch, threads) for provider in self.providers for recipe in self.recipes
                for batch in self.batches for threads in self.threads]

    def to_dict(self) -> dict:
        return {"batches": list(self.batches), "threads": list(self.threads), "providers": list(self.providers),
                "recipes": list(self.recipes)}

    @classmethod
    def from_dict(cls, values: dict) -> SweepGrid:
        return cls(tuple(values["batches"]), tuple(values["threads"]), tuple(values["providers"]),
                   tuple(values["recipes"]))


@dataclass(frozen=True)
class SweepSpec:
    """Everything that defines a sweep; stored with it so a resumed sweep runs the same points in the same order."""

    grid: SweepGrid
    seed: int = 0
    stopping: StoppingRule = field(default_factory=StoppingRule)
    latency_limit_ms: float | None = None
    percentile: str = "p99"  # the latency the limit and the frontier use

    def __post_init__(self) -> None:
        if self.percentile not in ("p50", "p90", "p95", "p99"):
            raise InputError(f"the sweep's latency percentile must be p50, p90, p95 or p99, got {self.percentile}")
        if self.latency_limit_ms is not None and not self.latency_limit_ms > 0:
            raise InputError(f"the latency limit must be above 0 ms, got {self.latency_limit_ms}")

    def order(self) -> list[SweepPoint]:
        """The grid shuffled with the seed: the same spec always gives the same order."""
        points = self.grid.points()
        permutation = np.random.default_rng(self.seed).permutation(len(points))
        return [points[int(index)] for index in permutation]

    def to_dict(self) -> dict:
        return {"grid": self.grid.to_dict(), "seed": self.seed, "stopping": self.stopping.to_dict(),
                "latency_limit_ms": self.latency_limit_ms, "percentile": self.percentile}

    @classmethod
    def from_dict(cls, values: dict) -> SweepSpec:
        return cls(SweepGrid.from_dict(values["grid"]), int(values["seed"]), StoppingRule.from_dict(values["stopping"]),
                   values.get("latency_limit_ms"), values.get("percentile", "p99"))


def pending_points(order: Sequence[SweepPoint], completed_keys: Iterable[str]) -> list[SweepPoint]:
    """The points of `order` not yet measured, still in order."""
    done = set(completed_keys)
    return [point for point in order if point.key not in done]


@dataclass(frozen=True)
class PointSummary:
    """What a measured point contributes to the analysis; round-trips through a plain dict (a run's summary)."""

    point: SweepPoint
    status: str  # "completed", "cancelled" or "failed"
    samples: int = 0
    items: int = 0  # samples × batch
    percentiles_ms: dict[str, float | None] = field(default_factory=dict)
    median_ci_ms: tuple[float, float] | None = None
    throughput_per_s: float | None = None
    converged: bool = False
    stop_reason: str = ""
    energy_j: float | None = None
    energy_source: str | None = None  # which counter and device, when measured
    energy_unavailable: str | None = None  # why not, when not
    error: str | None = None

    @property
    def key(self) -> str:
        return self.point.key

    @property
    def items_per_joule(self) -> float | None:
        return self.items / self.energy_j if self.energy_j and self.items else None

    def latency_ms(self, percentile: str) -> float | None:
        return self.percentiles_ms.get(percentile)

    def with_energy(self, joules: float | None, source: str | None = None, unavailable: str | None = None
                    ) -> PointSummary:
        """The studio adds what its telemetry measured over this point's timed loop."""
        if joules is None and not unavailable:
            raise ValueError("energy that was not measured needs a reason")
        return replace(self, energy_j=joules, energy_source=source, energy_unavailable=unavailable)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["median_ci_ms"] = list(self.median_ci_ms) if self.median_ci_ms else None
        values["key"] = self.key
        values["items_per_joule"] = self.items_per_joule
        return values

    @classmethod
    def from_dict(cls, values: dict) -> PointSummary:
        interval = values.get("median_ci_ms")
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        return cls(**{**known, "point": SweepPoint(**values["point"]),
                      "median_ci_ms": tuple(interval) if interval else None})


MeasurePoint = Callable[[SweepPoint, threading.Event, Progress], PointSummary]


@dataclass(frozen=True)
class SweepRun:
    status: str  # "completed" or "cancelled"
    measured: tuple[PointSummary, ...]  # this call's points, failures included, in the order they ran
    skipped: tuple[str, ...]  # keys already measured before this call


def run_sweep(spec: SweepSpec, measure: MeasurePoint, *, completed_keys: Iterable[str] = (),
              cancel: threading.Event | None = None, progress: Progress | None = None,
              on_point: Callable[[PointSummary], None] | None = None) -> SweepRun:
    """Measures every point of `spec` not in `completed_keys`, in the seeded order.

    A point the engine cannot run (an unavailable provider, a batch the model refuses) is recorded as failed
    with its reason and the sweep goes on; any other error stops the sweep. `on_point` gets each summary as
    soon as it exists, so an interrupted sweep loses at most the point in progress.
    """
    cancel = cancel or threading.Event()
    report = progress or (lambda fraction, message: None)
    order = spec.order()
    done = set(completed_keys)
    todo = pending_points(order, done)
    skipped = tuple(point.key for point in order if point.key in done)
    measured: list[PointSummary] = []
    for index, point in enumerate(todo):
        if cancel.is_set():
            break
        share = 1 / len(todo)

        def point_progress(fraction: float, message: str, base: float = index * share) -> None:
            report(base + share * min(max(fraction, 0.0), 1.0), f"{point.label()}: {message}")

        report(index * share, f"point {index + 1} of {len(todo)}: {point.label()}")
        try:
            summary = measure(point, cancel, point_progress)
        except EngineError as error:
            summary = PointSummary(point, "failed", error=str(error))
        measured.append(summary)
        if on_point is not None:
            on_point(summary)
    status = "cancelled" if cancel.is_set() else "completed"
    report(1.0, f"sweep {status}: {len(measured)} points measured, {len(skipped)} already done")
    return SweepRun(status, tuple(measured), skipped)
