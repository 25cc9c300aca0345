import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from engine.device import discovery as devices
from studio.cli.main import main
from tests.conftest import REPO, SAMPLE_CNN, SAMPLE_TRANSFORMER

FAST = ["--warmup", "1", "--iterations", "5", "--duration", "0"]


@pytest.fixture(autouse=True)
def cpu_only_machine(monkeypatch):
    monkeypatch.setattr(devices, "nvml_gpus", lambda: ([], None, "no NVIDIA driver: NVML says 'NVML Shared Library Not Found'"))
    monkeypatch.setattr(devices, "openvino_devices", lambda: [])
    monkeypatch.setattr(devices, "accel_device_nodes", lambda: [])
    monkeypatch.setattr(devices, "ort_npu_ep_devices", lambda: [])


def _one_line_error(capsys, code, pattern):
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and re.match(r"autoglm-studio( \w+)?: error: ", err), err
    assert pattern in err and "Traceback" not in err


def test_bench_json_document(capsys):
    # execute
    code = main(["bench", str(SAMPLE_TRANSFORMER), "--threads", "1", "--dim", "sequence=16", "--batch", "2", "--json", *FAST])
    # assert
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["schema_version"] == 1 and document["status"] == "completed"
    assert document["model"]["sha256"] and document["model"]["format"] == "onnx"
    assert document["device"]["id"] == "cpu" and document["device"]["provider"] == "CPUExecutionProvider"
    assert document["settings"]["batch"] == 2 and document["settings"]["threads"] == 1
    assert document["inputs"]["shapes"] == {"input_ids": [2, 16], "attention_mask": [2, 16]}
    assert set(document["latency_ms"]) == {"count", "mean", "std", "min", "p50", "p90", "p95", "p99", "max"}
    assert document["samples"] == document["latency_ms"]["count"] >= 5
    assert document["unreliable_percentiles"] == ["p90", "p95", "p99"] or document["samples"] >= 10
    assert document["throughput_per_s"] > 0
    assert set(document["cold_start_ms"]) == {"load", "session", "first_inference", "total"}
    assert document["environment"]["session"]["intra_op_threads"] == 1
    assert document["telemetry_hz"] == 10 and document["telemetry"]["live"] is True
    assert document["telemetry"]["inferences"] == document["samples"]
    assert document["telemetry"]["items"] == 2 * document["samples"]
    assert all(item["reason"] for item in document["telemetry"]["unavailable"])
    assert "avx2" in document["environment"]["cpu"]["isa_flags"] or document["environment"]["cpu"]["architecture"] != "x86_64"


def test_provider_options_reach_the_session(capsys):
    argv = ["bench", str(SAMPLE_CNN), "--provider-option", "arena_extend_strategy=kSameAsRequested", "--json", *FAST]
    assert main(argv) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["device"]["provider_options"] == {"arena_extend_strategy": "kSameAsRequested"}
    assert document["environment"]["session"]["provider_options"] == {
        "CPUExecutionProvider": {"arena_extend_strategy": "kSameAsRequested"}}


def test_telemetry_can_be_turned_off(capsys):
    assert main(["bench", str(SAMPLE_CNN), "--telemetry-hz", "0", "--json", *FAST]) == 0
    assert json.loads(capsys.readouterr().out)["telemetry"] is None


def test_idle_baseline_is_requested_in_the_summary(capsys):
    assert main(["bench", str(SAMPLE_CNN), "--idle-baseline", "0.2", "--telemetry-hz", "50", "--json", *FAST]) == 0
    assert json.loads(capsys.readouterr().out)["telemetry"]["idle_requested"] is True


def test_monitor_json_lists_metrics_and_reasons(capsys):
    assert main(["monitor", "--hz", "50", "--duration", "0.3", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    utilisation = document["metrics"]["cpu/utilisation"]
    assert utilisation["unit"] == "%" and utilisation["kind"] == "measured" and utilisation["samples"] >= 2
    assert document["live"] is True
    assert all(item["reason"] for item in document["unavailable"])


def test_monitor_text(capsys):
    assert main(["monitor", "--hz", "20", "--duration", "1.2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("telemetry at 1.0 s (live)") and "process_rss" in out
    rss = next(line for line in out.splitlines() if line.startswith("process  process_rss "))
    assert re.search(r"\d+(\.\d+)? (KiB|MiB|GiB)", rss) and ".00 B" not in out  # human units, not 46,428,160.00 B


def test_plain_bench_says_which_run_it_saved(capsys):
    assert main(["bench", str(SAMPLE_CNN), *FAST]) == 0
    assert re.search(r"saved as run (\d+) \(compare it with: runs compare \1 OTHER_ID\)", capsys.readouterr().out)


def test_bench_table_names_defaults(capsys):
    code = main(["bench", str(SAMPLE_CNN), *FAST])
    out = capsys.readouterr().out
    assert code == 0
    assert "defaults    batch=1" in out and "p99" in out and "throughput" in out
    assert "* p90, p95, p99 from too few samples" in out


def test_bench_with_npz_inputs(tmp_path, capsys):
    path = tmp_path / "real.npz"
    np.savez(path, image=np.zeros((3, 3, 64, 64), np.float32))
    assert main(["bench", str(SAMPLE_CNN), "--inputs", str(path), "--json", *FAST]) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["batch"] == 3


def test_inspect_and_devices(capsys):
    assert main(["inspect", str(SAMPLE_TRANSFORMER)]) == 0
    card = capsys.readouterr().out
    assert "input_ids" in card and "batch×sequence" in card and "parameters  457,986" in card
    assert main(["devices", "--json"]) == 0
    listed = {d["id"]: d for d in json.loads(capsys.readouterr().out)}
    assert listed["cpu"]["available"] and not listed["cuda"]["available"]
    assert main(["devices"]) == 0
    assert "NVML Shared Library Not Found" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "/nowhere/model.onnx"], "no such file"),
        (["inspect", "{tmp}"], "is a directory"),
        (["bench", "{random}"], "not a readable ONNX file"),
        (["bench", str(SAMPLE_CNN), "--shape", "image=1x3x32x32"], "input 'image': expected shape batch×3×64×64, given 1×3×32×32"),
        (["bench", str(SAMPLE_CNN), "--dim", "sequence=4"], "no symbolic dim 'sequence'"),
        (["bench", str(SAMPLE_CNN), "--device", "cuda:0"], "device 'cuda:0' is unavailable: no NVIDIA GPU found"),
        (["bench", str(SAMPLE_CNN), "--device", "npu"], "device 'npu' is unavailable: no NPU found"),
        (["bench", str(SAMPLE_CNN), "--backend", "torch"], "use --backend onnxruntime"),
        (["bench", str(SAMPLE_CNN), "--threads", "0"], "threads must be 1 to"),
        (["bench", str(SAMPLE_CNN), "--batch", "0"], "--batch must be at least 1"),
        (["bench", str(SAMPLE_CNN), "--inputs", "{random}"], "not a readable .npz"),
        (["bench", str(SAMPLE_CNN), "--iterations", "0"], "iterations must be at least 1"),
        (["bench", str(SAMPLE_CNN), "--shape", "image"], "expected NAME=VALUE"),
        (["bench", str(SAMPLE_CNN), "--iterations", "many"], "invalid int value"),
        (["frobnicate"], "invalid choice"),
        (["bench", str(SAMPLE_CNN), "--telemetry-hz", "500"], "telemetry rate must be between 1 and 100 Hz"),
        (["monitor", "--duration", "-1"], "--duration must be positive"),
        (["bench", str(SAMPLE_CNN), "--idle-baseline", "1", "--telemetry-hz", "0"], "an idle baseline needs telemetry"),
        (["bench", str(SAMPLE_CNN), "--idle-baseline", "-1"], "idle baseline must be 0 or more seconds"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    random_file = tmp_path / "random.onnx"
    random_file.write_bytes(os.urandom(256))
    argv = [a.format(tmp=tmp_path, random=random_file) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own usage errors
        code = exit_.code
    _one_line_error(capsys, code, message)


def test_debug_shows_the_traceback(capsys):
    assert main(["bench", "/nowhere/model.onnx", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().endswith("no such file")


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("autoglm-studio ")
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "bench" in capsys.readouterr().out


def test_a_missing_x11_library_is_explained_not_a_crash(monkeypatch, capsys):
    import ctypes.util

    import studio.cli.main as cli

    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    monkeypatch.setattr(cli.sys, "platform", "linux")
    assert main(["gui"]) == 2
    assert "libxcb-cursor.so.0" in capsys.readouterr().err
    chosen = []
    monkeypatch.setattr(cli, "_demo", lambda args: chosen.append("demo") or 0)
    assert main([]) == 0 and chosen == ["demo"]
    err = capsys.readouterr().err
    assert "libxcb-cursor.so.0" in err and "running the headless demo" in err


@pytest.mark.parametrize(("display", "command"), [(False, "demo"), (True, "gui")])
def test_no_command_opens_the_window_or_without_a_display_the_demo(monkeypatch, capsys, display, command):
    import studio.cli.main as cli

    chosen = []
    monkeypatch.setattr(cli, "display_available", lambda: display)
    monkeypatch.setattr(cli, f"_{command}", lambda args: chosen.append(args.command) or 0)
    assert main([]) == 0
    assert chosen == [command]
    assert ("no display found" in capsys.readouterr().err) is (not display)


def test_demo_runs_both_sample_models(capsys):
    assert main(["demo", "--duration", "0"]) == 0
    out = capsys.readouterr().out
    assert "== sample transformer ==" in out and "== sample cnn ==" in out
    assert out.count("status      completed") == 2


def test_cli_start_does_not_import_heavy_runtimes():
    script = ("import sys, studio.cli.main; heavy = [m for m in ('torch', 'onnxruntime', 'onnx', 'sqlalchemy', 'alembic', "
              "'PySide6', 'pyqtgraph') if m in sys.modules]; print(heavy)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == "[]"


def test_console_script_entry_point():
    result = subprocess.run([sys.executable, "-m", "studio", "--version"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and result.stdout.startswith("autoglm-studio ")
