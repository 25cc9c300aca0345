import json

import pytest

from engine.device import discovery as devices
from studio.cli.main import main
from tests.conftest import linear_onnx


@pytest.fixture(autouse=True)
def cpu_only_machine(monkeypatch):
    monkeypatch.setattr(devices, "nvml_gpus", lambda: ([], None, "no NVIDIA driver"))


@pytest.fixture
def model(tmp_path):
    return linear_onnx(tmp_path / "m.onnx")


def _json(capsys, argv) -> dict:
    quiet = ["--telemetry-hz", "0"] if argv[0] == "bench" else []
    assert main([*argv, "--json", *quiet]) == 0
    return json.loads(capsys.readouterr().out)


def test_single_stream_reports_p90_and_is_saved(capsys, model):
    document = _json(capsys, ["bench", str(model), "--scenario", "single-stream", "--iterations", "40", "--duration", "0"])
    scenario = document["scenario"]
    assert scenario["scenario"] == "single-stream" and scenario["result"] == "VALID"
    assert set(scenario["headline"]) == {"p90_ms"} and scenario["queries"] >= 40
    shown = _json(capsys, ["runs", "show", str(document["run_id"])])
    assert shown["latency_samples"] == scenario["queries"]
    assert shown["summary"]["scenario"]["headline"] == scenario["headline"]


def test_server_measures_latency_from_the_scheduled_arrival(capsys, model):
    document = _json(capsys, ["bench", str(model), "--scenario", "server", "--rate", "400", "--latency-bound-ms", "50",
                              "--iterations", "60", "--duration", "0.1"])
    scenario = document["scenario"]
    assert scenario["headline"]["target_qps"] == 400 and scenario["queries"] >= 60
    assert scenario["latency_ms"]["p50"] >= scenario["service_ms"]["p50"]  # queueing counts, never less


def test_max_rate_search_saves_its_trials(capsys, model):
    document = _json(capsys, ["bench", str(model), "--find-max-rate", "--latency-bound-ms", "50", "--iterations", "30",
                              "--duration", "0.05"])
    search = document["max_rate"]
    assert search["trials"] and search["capacity_qps"] > 0
    assert search["max_rate_qps"] is None or any(t["held"] and t["rate_qps"] == search["max_rate_qps"]
                                                  for t in search["trials"])


@pytest.mark.parametrize(("extra", "message"), [
    (["--scenario", "server", "--latency-bound-ms", "5"], "needs a target rate"),
    (["--scenario", "server", "--rate", "10"], "needs a latency bound"),
    (["--find-max-rate"], "needs a latency bound"),
    (["--rate", "10"], "belong to --scenario server"),
    (["--find-max-rate", "--scenario", "offline", "--latency-bound-ms", "5"], "drop --scenario"),
])
def test_bad_scenario_options(capsys, model, extra, message):
    assert main(["bench", str(model), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
