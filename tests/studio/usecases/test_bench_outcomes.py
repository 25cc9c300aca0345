"""benchmark_model returns the kind its request asks for, told apart by type; the reports keep their JSON."""

from __future__ import annotations

import pytest

from engine.errors import InputError
from engine.measure.runner import BenchmarkSettings
from engine.measure.scenarios import ScenarioResult, ScenarioSettings
from studio import usecases
from studio.usecases.benchmark import benchmark_timed_loop
from tests.conftest import linear_onnx

TINY = BenchmarkSettings(warmup=1, min_iterations=5, min_duration_s=0)
OFFLINE = ScenarioSettings(scenario="offline", min_duration_s=0, min_queries=5, warmup=1)


@pytest.fixture
def request_for(tmp_path):
    model = str(linear_onnx(tmp_path / "linear.onnx"))
    return lambda **changes: usecases.BenchRequest(model=model, settings=TINY, telemetry_hz=None, save=False, **changes)


def test_the_plain_loop_gives_a_bench_report_and_a_scenario_a_scenario_report(request_for):
    # execute
    plain = usecases.benchmark_model(request_for())
    scenario = usecases.benchmark_model(request_for(scenario=OFFLINE))

    # assert
    assert isinstance(plain, usecases.BenchReport) and plain.status == "completed"
    assert isinstance(scenario, usecases.ScenarioReport) and isinstance(scenario.result, ScenarioResult)
    assert scenario.status == scenario.result.status == "completed"
    assert plain.to_dict()["latency_ms"]["count"] == plain.result.stats.count
    document = scenario.to_dict()
    assert document["cold_start_ms"] == scenario.cold_start.to_dict() and "total" in document["cold_start_ms"]
    assert document["scenario"]["scenario"] == "offline" and "max_rate" not in document


def test_the_timed_loop_alone_refuses_a_scenario(request_for):
    with pytest.raises(InputError, match="leave out --scenario"):
        benchmark_timed_loop(request_for(scenario=OFFLINE))


@pytest.mark.parametrize(("timed", "profiled", "ratio"), [(2.0, 3.0, 1.5), (None, 3.0, None), (2.0, None, None)])
def test_the_profiling_overhead_is_a_ratio_only_when_both_medians_exist(timed, profiled, ratio):
    overhead = usecases.ProfilingOverhead(timed, profiled)
    assert overhead.ratio == ratio
    assert overhead.to_dict() == {"timed_median_ms": timed, "profiled_median_ms": profiled, "ratio": ratio}
