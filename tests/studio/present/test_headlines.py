"""Headline rows a view lays out: typed (label, value, unit), and "n/a" where nothing was measured, never 0."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.latency_stats import LatencyStats
from engine.generative.memory import PeakMemory
from engine.generative.results import GenerationResult, GenerationSummary
from engine.measure.max_rate import MaxRateResult
from engine.measure.runner import BenchmarkSettings
from engine.measure.scenarios import ScenarioSettings
from studio import usecases
from studio.present.benchmarks import bench_text, scenario_text
from studio.present.headlines import (
    Headline,
    bench_headlines,
    generation_headlines,
    outcome_line,
)
from tests.conftest import linear_onnx

TINY = BenchmarkSettings(warmup=1, min_iterations=5, min_duration_s=0)
NOTHING = LatencyStats.of(np.empty(0, dtype=np.int64), wall_ns=0)


@pytest.fixture
def request_for(tmp_path):
    model = str(linear_onnx(tmp_path / "linear.onnx"))
    return lambda **changes: usecases.BenchRequest(model=model, settings=TINY, telemetry_hz=None, save=False, **changes)


def _rows(headlines: list[Headline]) -> dict[str, Headline]:
    return {row.label: row for row in headlines}


def test_a_timed_loop_headlines_latency_and_throughput_with_units(request_for):
    # setup
    report = usecases.benchmark_model(request_for())

    # execute
    rows = _rows(bench_headlines(report))

    # assert
    assert rows["status"].value == "completed" and rows["samples"].value == str(report.result.stats.count)
    assert rows["latency p50"].unit == "ms" and rows["throughput"].unit == "items/s"
    assert float(rows["latency p50"].value.rstrip("*")) == pytest.approx(report.result.stats.p50_ms, abs=1e-3)
    assert outcome_line(report).endswith("; not saved")


def test_what_was_not_measured_reads_n_a_in_rows_lines_and_text(request_for):
    # setup
    measured = usecases.benchmark_model(request_for())
    report = replace(measured, result=replace(measured.result, stats=NOTHING), save_error="disk full")

    # execute
    rows = _rows(bench_headlines(report))
    line = outcome_line(report)
    text = bench_text(report)

    # assert
    assert rows["latency p50"].value == rows["latency p99"].value == rows["throughput"].value == "n/a"
    assert "p50 n/a ms" in line and line.endswith("NOT saved: disk full")
    assert "throughput  n/a items/s" in text and " 0.000" not in text


def test_energy_rows_cover_only_the_devices_that_measured_it(request_for):
    # setup
    telemetry = {"devices": {"rapl:package-0": {"energy_per_inference_j": 0.002},
                             "gpu0": {"energy_per_inference_j": None}}}
    report = replace(usecases.benchmark_model(request_for()), telemetry=telemetry)

    # execute
    energy = [row for row in bench_headlines(report) if row.label.startswith("energy")]

    # assert
    assert energy == [Headline("energy per inference (rapl:package-0)", "2.000", "mJ")]


def test_a_scenario_headlines_its_verdict_and_a_search_its_maximum_rate(request_for):
    # setup
    scenario = usecases.benchmark_model(request_for(scenario=ScenarioSettings(
        scenario="offline", min_duration_s=0, min_queries=5, warmup=1)))
    search = replace(scenario, result=MaxRateResult(latency_bound_ms=5.0, capacity_qps=100.0, max_rate_qps=None,
                                                    trials=(), status="completed", note="a note"))

    # execute
    scenario_rows, search_rows = _rows(bench_headlines(scenario)), _rows(bench_headlines(search))

    # assert
    assert scenario_rows["scenario"].value.startswith("offline ") and scenario_rows["throughput"].unit == "items/s"
    assert search_rows["max rate"] == Headline("max rate", "n/a", "queries/s")
    assert search_rows["p99 bound"] == Headline("p99 bound", "5", "ms")
    assert "max rate n/a queries/s with p99 ≤ 5 ms" in outcome_line(search)
    assert "MAX RATE with p99 ≤ 5 ms: none of the rates tried held the bound" in scenario_text(search)


def test_generation_headlines_write_an_unmeasured_rate_as_n_a():
    # setup
    summary = GenerationSummary(ttft=NOTHING, tpot=NOTHING, prefill_tokens_per_s=None, decode_tokens_per_s=None,
                                output_tokens_per_s=None, generated_tokens=0)
    result = GenerationResult(status="cancelled", settings={}, model={}, cold_start={}, requests=[], summary=summary,
                              memory=PeakMemory(0, "sampled between steps", None, None, "cpu"), loop_start_ns=0,
                              loop_end_ns=0)
    report = usecases.GenerateReport(request=usecases.GenerateRequest(model_dir="folder"), model=None, result=result,
                                     telemetry=None, generated_tokens=0)

    # execute
    rows = _rows(generation_headlines(report))

    # assert
    assert rows["status"].value == "cancelled" and rows["generated tokens"].value == "0"
    assert rows["TTFT p50"] == Headline("TTFT p50", "n/a", "ms")
    assert rows["decode"] == Headline("decode", "n/a", "tokens/s")
