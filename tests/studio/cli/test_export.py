import json

import pytest

from engine.device import discovery as devices
from studio.cli.main import main
from tests.conftest import SAMPLE_CNN, linear_onnx


@pytest.fixture(autouse=True)
def cpu_only_machine(monkeypatch):
    monkeypatch.setattr(devices, "nvml_gpus", lambda: ([], None, "no NVIDIA driver"))


def _bench(capsys, model) -> int:
    assert main(["bench", str(model), "--iterations", "20", "--duration", "0", "--warmup", "1", "--json"]) == 0
    return json.loads(capsys.readouterr().out)["run_id"]


def test_export_a_run_then_verify_it(tmp_path, capsys):
    # setup
    run_id = _bench(capsys, SAMPLE_CNN)
    bundle = tmp_path / "bundle"
    # execute
    assert main(["export", "--run", str(run_id), "-o", str(bundle), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert main(["verify-bundle", str(bundle), "--run-predict", "--json"]) == 0
    verified = json.loads(capsys.readouterr().out)
    # assert
    assert {"model.onnx", "recipe.json", "manifest.json", "report.html", "predict.py", "README.txt"} <= {
        p.name for p in bundle.iterdir()}
    assert manifest["benchmark"]["run_id"] == run_id and manifest["benchmark"]["samples"] >= 20
    assert manifest["benchmark"]["latency_ms"]["count"] == manifest["benchmark"]["samples"]
    assert verified["passed"] and all(o["max_abs_diff"] == 0 for o in verified["outputs"])


def test_export_refuses_to_overwrite_and_verify_catches_tampering(tmp_path, capsys):
    model = linear_onnx(tmp_path / "m.onnx")
    bundle = tmp_path / "bundle"
    assert main(["export", str(model), "-o", str(bundle)]) == 0
    capsys.readouterr()
    assert main(["export", str(model), "-o", str(bundle)]) == 2
    assert "--force" in capsys.readouterr().err
    (bundle / "predict.py").write_text("print('not the original')\n")
    assert main(["verify-bundle", str(bundle)]) == 2
    assert "predict.py was modified" in capsys.readouterr().err


def test_export_an_optimized_artifact_carries_its_recipe(tmp_path, capsys):
    model = linear_onnx(tmp_path / "m.onnx", features=32)
    assert main(["optimize", str(model), "--quantize", "dynamic", "-o", str(tmp_path / "q.onnx"),
                 "--compare-seconds", "0", "--json"]) == 0
    artifact = json.loads(capsys.readouterr().out)["artifact_id"]
    bundle = tmp_path / "bundle"
    assert main(["export", "--artifact", str(artifact), "-o", str(bundle)]) == 0
    assert json.loads((bundle / "recipe.json").read_text())["quantization"]["method"] == "dynamic_int8"


def test_report_for_a_comparison(tmp_path, capsys):
    first, second = _bench(capsys, SAMPLE_CNN), _bench(capsys, SAMPLE_CNN)
    output = tmp_path / "report.html"
    assert main(["report", "--run", str(first), "--compare", str(second), "-o", str(output)]) == 0
    html = output.read_text()
    assert html.startswith("<!") and f"run {second}" in html.lower()


@pytest.mark.parametrize(("argv", "message"), [
    (["export", "-o", "{tmp}/b"], "exactly one of a model"),
    (["export", "--run", "7", "-o", "{tmp}/b"], "no run 7"),
    (["verify-bundle", "{tmp}"], "manifest"),
])
def test_bad_export_requests(tmp_path, capsys, argv, message):
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
