"""`sweep`, `profile` and `profiles compare` on tiny models: saved point runs, resume, stored profiles, bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time

import psutil
import pytest
import sqlalchemy as sa

from engine.device import discovery as devices
from engine.device.discovery import Device
from engine.measure.adaptive_stopping import StoppingRule
from engine.optimize.recipe import Recipe
from profilers import metrics
from profilers.metrics import MetricKind, MetricSpec
from profilers.ring_buffer import MetricSeries
from profilers.run_summary import summarize_run
from storage import open_database
from storage.schema import SweepRow
from studio.cli.main import main
from studio.usecases.sweep_points import point_energy
from studio.usecases.sweeps import SweepRequest, sweep_model
from tests.conftest import REPO, linear_onnx

TINY_POINTS = ["--point-cap-s", "0.1", "--min-iterations", "20", "--warmup", "1"]
TINY_RULE = StoppingRule(warmup=1, min_iterations=20, min_duration_s=0.1, max_duration_s=0.1)  # as TINY_POINTS
FAST_BENCH = ["--warmup", "1", "--iterations", "5", "--duration", "0", "--telemetry-hz", "0"]


@pytest.fixture(autouse=True)
def cpu_only_machine(monkeypatch):
    monkeypatch.setattr(devices, "nvml_gpus", lambda: ([], None, "no NVIDIA driver"))
    monkeypatch.setattr(devices, "openvino_devices", lambda: [])
    monkeypatch.setattr(devices, "accel_device_nodes", lambda: [])
    monkeypatch.setattr(devices, "ort_npu_ep_devices", lambda: [])


@pytest.fixture
def model(tmp_path) -> str:
    return str(linear_onnx(tmp_path / "linear.onnx"))


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:  # argparse's own usage errors
        return exit_.code


def _one_line_error(capsys, code: int, pattern: str) -> None:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and re.match(r"autoglm-studio( \w+)*: error: ", err), err
    assert pattern in err and "Traceback" not in err


def test_each_point_is_a_saved_run_of_one_sweep_and_the_choices_are_reported(capsys, model, private_database):
    # execute: the NPU points cannot run here; the CPU points can
    code = main(["sweep", model, "--batch", "1,2", "--threads", "1", "--providers", "cpu,npu",
                 "--latency-limit-ms", "1000", "--seed", "3", "--json", *TINY_POINTS])

    # assert
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and document["status"] == "completed"
    points = {(p["point"]["provider"], p["point"]["batch"]): p for p in document["points"]}
    assert set(points) == {("cpu", 1), ("cpu", 2), ("npu", 1), ("npu", 2)}
    for batch in (1, 2):
        cpu, npu = points[("cpu", batch)], points[("npu", batch)]
        assert cpu["status"] == "completed" and cpu["items"] == cpu["samples"] * batch and cpu["samples"] >= 20
        assert cpu["energy_j"] is not None or cpu["energy_unavailable"]
        assert npu["status"] == "failed" and "npu" in npu["error"]
    fastest = document["analysis"]["fastest"]
    assert fastest["point"]["provider"] == "cpu" and "within 1000 ms" in fastest["reason"]
    assert document["analysis"]["frontier"] and document["analysis"]["most_efficient"]["reason"]
    with open_database(str(private_database)) as db:
        runs = db.sweeps.sweep_runs(document["sweep_id"])
        sweep = db.sweeps.get_sweep(document["sweep_id"])
    assert {run.id for run in runs} == {p["run_id"] for p in document["points"]}
    assert sorted(run.status for run in runs) == ["completed", "completed", "failed", "failed"]
    completed = [run for run in runs if run.status == "completed"]
    assert all(run.latency_count == points[("cpu", run.settings["batch"])]["samples"] for run in completed)
    assert all(run.summary["throughput_per_s"] > 0 and "sweep-" + str(sweep.id) in run.tags for run in completed)
    assert sweep.status == "completed" and sweep.summary["analysis"]["fastest"]["key"] == fastest["key"]


def test_a_resumed_sweep_measures_only_the_points_not_done(capsys, model, private_database):
    # setup: the first session stops after its first point
    stop = threading.Event()
    first = sweep_model(SweepRequest(model, batches=(1, 2), threads=(1,), stopping=TINY_RULE,
                                            telemetry_hz=None), cancel=stop, on_point=lambda summary, run: stop.set())
    done_key, done_run = next(iter(first.run_ids.items()))

    # execute: the same command line again, with --resume
    code = main(["sweep", model, "--batch", "1,2", "--threads", "1", "--resume", str(first.sweep_id), *TINY_POINTS])

    # assert
    out = capsys.readouterr().out
    assert first.status == "cancelled" and len(first.summaries) == 1
    assert code == 0 and "1 measured now, 1 done earlier" in out
    assert re.search(r"^\s+1\s+[\d.]+ \([\d.]+\)", out, re.M) and re.search(r"^\s+2\s+[\d.]+ \([\d.]+\)", out, re.M)
    with open_database(str(private_database)) as db:
        runs = db.sweeps.sweep_runs(first.sweep_id)
        assert db.sweeps.completed_points(first.sweep_id)[done_key] == done_run
        assert db.sweeps.get_sweep(first.sweep_id).status == "completed"
    assert len(runs) == 2 and [run.sweep_point for run in runs].count(done_key) == 1


KILLED_SWEEP = """
import sys
from engine.measure.adaptive_stopping import StoppingRule
from studio.usecases.sweeps import SweepRequest, sweep_model
rule = StoppingRule(warmup=1, min_iterations=20, min_duration_s=1.0, max_duration_s=1.0)
sweep_model(SweepRequest(sys.argv[1], batches=(1, 2, 4), threads=(1,), stopping=rule, telemetry_hz=None))
"""


def test_a_sweep_whose_process_was_killed_resumes_without_the_points_it_finished(capsys, model, private_database):
    # setup: kill the sweeping process as soon as its first point is saved (each point takes a second)
    process = subprocess.Popen([sys.executable, "-c", KILLED_SWEEP, model], cwd=REPO, env=os.environ.copy())
    with open_database(str(private_database)) as db:
        while process.poll() is None and not any(run.status == "completed" for sweep in db.sweeps.list_sweeps()
                                                 for run in db.sweeps.sweep_runs(sweep.id)):
            time.sleep(0.02)
        process.kill()
        process.wait()
        sweep_id = db.sweeps.list_sweeps()[0].id
        before = {run.id: run.status for run in db.sweeps.sweep_runs(sweep_id)}
    with open_database(str(private_database)) as db:  # a new open notices the dead process
        kept = db.sweeps.completed_points(sweep_id)
        crashed = db.sweeps.get_sweep(sweep_id).status

    # execute: the same settings, resumed
    code = main(["sweep", model, "--batch", "1,2,4", "--threads", "1", "--resume", str(sweep_id), "--point-cap-s", "1",
                 "--min-duration", "1", "--min-iterations", "20", "--warmup", "1", "--telemetry-hz", "0"])

    # assert
    out = capsys.readouterr().out
    assert crashed == "interrupted" and 1 <= len(kept) < 3
    assert code == 0 and f"{3 - len(kept)} measured now, {len(kept)} done earlier" in out
    with open_database(str(private_database)) as db:
        runs = db.sweeps.sweep_runs(sweep_id)
        done = db.sweeps.completed_points(sweep_id)
    assert len(done) == 3 and all(done[key] == run_id for key, run_id in kept.items())
    assert len(runs) == len(before) + 3 - len(kept)  # nothing finished before the kill was measured again
    assert all(run.status in ("completed", "interrupted") for run in runs)


def test_a_sweep_another_live_process_is_running_is_not_taken_over(capsys, model, private_database):
    # setup: the sweep's owner is this test's parent process, which is alive
    first = sweep_model(SweepRequest(model, batches=(1,), stopping=TINY_RULE, telemetry_hz=None))
    parent = psutil.Process(os.getppid())
    with open_database(str(private_database)) as db:
        db.transact(lambda s: s.execute(sa.update(SweepRow).where(SweepRow.id == first.sweep_id).values(
            status="running", writer_pid=parent.pid, writer_started=parent.create_time())), write=True, where="test")

    # execute / assert
    _one_line_error(capsys, main(["sweep", model, "--resume", str(first.sweep_id)]), "still being run by process")


@pytest.mark.parametrize(("argv", "message"), [
    (["--batch", "1,x"], "expected comma-separated batch sizes"),
    (["--batch", "0"], "at least 1"),
    (["--threads", "2,2"], "lists a value twice"),
    (["--latency-percentile", "p42"], "invalid choice"),
    (["--latency-limit-ms", "-1"], "above 0 ms"),
    (["--point-cap-s", "0"], "above 0 seconds"),
    (["--recipes", "missing.json"], "cannot read the recipe"),
    (["--resume", "999"], "no sweep 999"),
])
def test_bad_sweep_input_is_one_line_and_exit_2(capsys, model, argv, message):
    _one_line_error(capsys, _run(["sweep", model, *argv]), message)


def test_resuming_with_another_grid_is_refused(capsys, model):
    first = sweep_model(SweepRequest(model, batches=(1,), stopping=TINY_RULE, telemetry_hz=None))
    _one_line_error(capsys, main(["sweep", model, "--batch", "1,2", "--resume", str(first.sweep_id)]),
                    f"sweep {first.sweep_id} was started with --batch 1")


def test_recipes_are_optimized_once_and_measured_beside_the_original(capsys, model, tmp_path):
    # setup
    values = Recipe().to_dict()
    values["quantization"]["method"] = "dynamic_int8"
    Recipe.from_dict(values).save(tmp_path / "int8.json")

    # execute
    code = main(["sweep", model, "--recipes", str(tmp_path / "int8.json"), "--telemetry-hz", "0", *TINY_POINTS])

    # assert
    out = capsys.readouterr().out
    assert code == 0
    assert "recipe int8.json: optimized to" in out
    assert "cpu / original: items/s" in out and "cpu / int8.json: items/s" in out
    assert "cpu int8.json batch 1 threads default  completed" in out
    assert "energy was not measured: telemetry was off for this sweep" in out


def test_profile_prints_the_tables_and_stores_the_profile_with_the_timed_run(capsys, model, private_database):
    # execute
    code = main(["profile", model, "--threads", "1", "--profile-iterations", "3", *FAST_BENCH])

    # assert
    captured = capsys.readouterr()
    assert code == 0 and captured.err == ""
    run_id = int(re.search(r"saved as run (\d+)", captured.out).group(1))
    assert re.search(r"placement: all \d+ nodes ran on CPUExecutionProvider, as requested", captured.out)
    assert "profile stored with the run" in captured.out
    with open_database(str(private_database)) as db:
        stored = db.runs.load_profile(run_id)
    assert stored.runtime == "onnxruntime" and stored.profile["iterations"] == 3
    op_types = {op["op_type"] for op in stored.profile["op_types"]}
    assert op_types & {"MatMul", "Gemm", "FusedMatMul"}  # ONNX Runtime may fuse MatMul + Add
    assert all(re.search(rf"^{op_type}\s+[\d.]+%", captured.out, re.M) for op_type in op_types)
    assert all(node["name"][:35] in captured.out for node in stored.profile["nodes"])


def test_two_stored_profiles_compare_layer_by_layer(capsys, model):
    # setup
    run_ids = []
    for _ in range(2):
        assert main(["profile", model, "--profile-iterations", "3", "--json", *FAST_BENCH]) == 0
        document = json.loads(capsys.readouterr().out)
        assert document["profile_stored"] and document["profile"]["placement"]["fallback"] is False
        run_ids.append(document["run_id"])

    # execute
    code = main(["profiles", "compare", *map(str, run_ids)])

    # assert
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("linear.onnx -> linear.onnx")
    assert re.search(r"^whole model \(profiled median\)\s+[\d.]+\s+[\d.]+\s+[\d.]+x\s+1\.00x$", out, re.M)
    assert "layers: 1 compute layers paired in execution order" in out


def test_comparing_a_run_without_a_profile_is_one_line_and_exit_2(capsys, model):
    assert main(["bench", model, "--json", *FAST_BENCH]) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    _one_line_error(capsys, main(["profiles", "compare", str(run_id), str(run_id)]),
                    f"run {run_id} has no layer profile")
    _one_line_error(capsys, main(["profile", model, "--profile-iterations", "0", *FAST_BENCH]), "at least 1 iteration")
    _one_line_error(capsys, main(["profile", model, "--scenario", "offline", *FAST_BENCH]), "leave out --scenario")


# ---- energy per point ----------------------------------------------------------------------------------------


def _counter_telemetry(device: str, joules_per_s: float) -> dict:
    """Two seconds of an energy counter rising steadily, summarized over the middle second as a run would be."""
    spec = MetricSpec(metrics.ENERGY, "J", device, MetricKind.MEASURED, cumulative=True, note="package counter")
    t = [int(i * 1e8) for i in range(21)]
    series = MetricSeries.from_lists(t, [joules_per_s * ts / 1e9 for ts in t])
    return summarize_run({spec.key: spec}, {spec.key: series}, int(5e8), int(15e8), 100, items=400).to_dict()


def test_a_points_energy_comes_from_the_counter_covering_its_device():
    # setup
    cpu = Device("cpu", "cpu", "a CPU", (), True)
    gpu = Device("cuda:1", "gpu", "a GPU", (), True)

    # execute
    on_cpu = point_energy(_counter_telemetry("rapl:package-0", 20.0), cpu, 10.0)
    on_gpu = point_energy(_counter_telemetry("gpu1", 50.0), gpu, 10.0)
    cpu_without_rapl = point_energy(_counter_telemetry("gpu1", 50.0), cpu, 10.0)
    off = point_energy(None, cpu, None)

    # assert: 1 s at 20 W and at 50 W
    assert on_cpu[0] == pytest.approx(20.0) and on_cpu[1].startswith("rapl:package-0 counter") and on_cpu[2] is None
    assert on_gpu[0] == pytest.approx(50.0) and on_gpu[1].startswith("gpu1")
    assert cpu_without_rapl == (None, None, "no energy counter covers cpu")
    assert off == (None, None, "telemetry was off for this sweep")
