"""Side-by-side comparison of 2 to 8 runs, with the statistics to say whether a difference is real.

The first run is the baseline. Each other run gets the ratio of its median latency to the baseline's with a
bootstrap 95% interval (`storage.bootstrap`) and a Mann-Whitney U test; a verdict ("faster"/"slower") is given
only when the interval excludes 1, because a 3% difference inside the noise is not a speed-up. Runs measured on
different machines or software stacks are compared all the same, with a warning saying what differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core.latency_stats import STATISTIC_NAMES, LatencyStats
from storage.bootstrap import median_ratio_interval
from storage.errors import ComparisonError
from storage.rank_test import mann_whitney_u
from storage.records import EnergyFigure, RunData

MIN_RUNS, MAX_RUNS = 2, 8
MIN_SAMPLES_FOR_INTERVAL = 20
_MAX_LISTED_DIFFERENCES = 6


@dataclass(frozen=True)
class ComparedRun:
    run_id: int
    label: str
    status: str
    host: str
    statistics: LatencyStats
    energy: tuple[EnergyFigure, ...]


@dataclass(frozen=True)
class PairwiseResult:
    baseline_id: int
    run_id: int
    median_ratio: float | None  # run median / baseline median: below 1 is faster
    ci_low: float | None
    ci_high: float | None
    mann_whitney_u: float | None
    p_value: float | None
    verdict: str | None  # "faster" or "slower", only when the interval excludes 1
    explanation: str


@dataclass(frozen=True)
class EnergyRow:
    """Energy per inference on one device, measured one way, for each compared run (None where unavailable)."""

    device: str
    source: str
    joules_per_inference: tuple[float | None, ...]
    unavailable_reasons: tuple[str | None, ...]


@dataclass(frozen=True)
class Comparison:
    runs: tuple[ComparedRun, ...]
    pairs: tuple[PairwiseResult, ...]
    energy: tuple[EnergyRow, ...]
    warnings: tuple[str, ...]
    confidence: float
    resamples: int
    seed: int

    def statistics_table(self) -> list[tuple[str, list[Any]]]:
        """Aligned rows: each statistic with one value per run, in run order."""
        return [(name, [getattr(run.statistics, name) for run in self.runs]) for name in STATISTIC_NAMES]

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [{"run_id": run.run_id, "label": run.label, "status": run.status, "host": run.host,
                      "statistics": run.statistics.to_dict(), "energy": [asdict(e) for e in run.energy]}
                     for run in self.runs],
            "pairs": [asdict(pair) for pair in self.pairs],
            "energy": [asdict(row) for row in self.energy],
            "warnings": list(self.warnings),
            "confidence": self.confidence,
            "resamples": self.resamples,
            "seed": self.seed,
        }


def compare_runs(runs: Sequence[RunData], *, seed: int = 0, resamples: int = 10_000) -> Comparison:
    if not MIN_RUNS <= len(runs) <= MAX_RUNS:
        raise ComparisonError(f"Compare between {MIN_RUNS} and {MAX_RUNS} runs at a time (got {len(runs)}).")
    compared = tuple(ComparedRun(run.record.id, _label(run), run.record.status, run.record.host,
                                 run.latency.statistics(), run.record.energy) for run in runs)
    baseline = runs[0]
    pairs = tuple(_pairwise(baseline, run, seed=seed + index, resamples=resamples)
                  for index, run in enumerate(runs[1:], start=1))
    return Comparison(compared, pairs, _energy_rows(runs), tuple(_warnings(runs)), 0.95, resamples, seed)


def _pairwise(baseline: RunData, run: RunData, *, seed: int, resamples: int) -> PairwiseResult:
    base_id, run_id = baseline.record.id, run.record.id
    base_latency, run_latency = baseline.latency.latencies_ns, run.latency.latencies_ns
    if min(base_latency.size, run_latency.size) < MIN_SAMPLES_FOR_INTERVAL:
        return PairwiseResult(base_id, run_id, None, None, None, None, None, None,
                              f"Too few samples to compare run {run_id} with run {base_id} "
                              f"(need {MIN_SAMPLES_FOR_INTERVAL} in each).")
    interval = median_ratio_interval(base_latency, run_latency, resamples=resamples, seed=seed)
    u_statistic, p_value = mann_whitney_u(run_latency, base_latency)
    if interval is None:
        return PairwiseResult(base_id, run_id, None, None, None, u_statistic, p_value, None,
                              f"Run {base_id} has a median latency of 0, so no ratio can be formed.")
    span = f"95% CI {interval.low:.3f}-{interval.high:.3f}"
    if interval.high < 1.0:
        verdict = "faster"
        text = (f"Run {run_id} is faster than run {base_id}: median latency x{interval.ratio:.3f} "
                f"({1 / interval.ratio:.2f}x speed-up; {span}).")
    elif interval.low > 1.0:
        verdict = "slower"
        text = (f"Run {run_id} is slower than run {base_id}: median latency x{interval.ratio:.3f} "
                f"({interval.ratio:.2f}x the time; {span}).")
    else:
        verdict = None
        text = (f"No clear difference between run {run_id} and run {base_id}: median latency "
                f"x{interval.ratio:.3f}, but the {span} includes 1.")
    return PairwiseResult(base_id, run_id, interval.ratio, interval.low, interval.high, u_statistic, p_value,
                          verdict, text)


def _energy_rows(runs: Sequence[RunData]) -> tuple[EnergyRow, ...]:
    keys: list[tuple[str, str]] = []
    for run in runs:
        for figure in run.record.energy:
            if (figure.device, figure.source) not in keys:
                keys.append((figure.device, figure.source))
    rows = []
    for device, source in keys:
        figures = [next((f for f in run.record.energy if (f.device, f.source) == (device, source)), None)
                   for run in runs]
        rows.append(EnergyRow(device, source, tuple(f.joules_per_inference if f else None for f in figures),
                              tuple(_unavailable_reason(f) for f in figures)))
    return tuple(rows)


def _unavailable_reason(figure: EnergyFigure | None) -> str | None:
    if figure is None:
        return "not measured in this run"
    return figure.unavailable_reason if figure.joules_per_inference is None else None


def _warnings(runs: Sequence[RunData]) -> list[str]:
    warnings = []
    hosts: dict[str, list[int]] = {}
    for run in runs:
        hosts.setdefault(run.record.host, []).append(run.record.id)
    if len(hosts) > 1:
        listed = "; ".join(f"{host}: {', '.join(f'#{i}' for i in ids)}" for host, ids in hosts.items())
        warnings.append(f"The runs come from different machines ({listed}); part of any difference may come from "
                        "the hardware rather than the model.")
    differing = _differing_keys([_flatten(run.record.environment) for run in runs])
    if differing:
        shown = ", ".join(differing[:_MAX_LISTED_DIFFERENCES]) + (", ..." if len(differing) > _MAX_LISTED_DIFFERENCES
                                                                   else "")
        warnings.append(f"The runs' environments differ in {shown}.")
    batch_sizes = {run.record.id: sorted(set(np.unique(run.latency.batches).tolist())) for run in runs}
    if len({tuple(sizes) for sizes in batch_sizes.values() if sizes}) > 1:
        listed = ", ".join(f"#{run_id}: {'/'.join(map(str, sizes))}" for run_id, sizes in batch_sizes.items())
        warnings.append(f"The runs use different batch sizes ({listed}); per-iteration latencies differ in work.")
    for run in runs:
        if run.record.status != "completed":
            warnings.append(f"Run {run.record.id} is {run.record.status}; its samples may not cover the whole "
                            "planned run.")
    return warnings


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _differing_keys(environments: list[dict[str, Any]]) -> list[str]:
    keys = sorted(set().union(*environments))
    return [key for key in keys if len({repr(env.get(key)) for env in environments}) > 1]


def _label(run: RunData) -> str:
    record = run.record
    model = record.model.path.replace("\\", "/").rsplit("/", 1)[-1] if record.model else "?"
    optimized = " (optimized)" if record.artifact_id is not None else ""
    return f"#{record.id} {model}{optimized} on {record.device} via {record.backend}"
