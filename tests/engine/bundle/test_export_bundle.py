"""Deployment bundles: contents and hashes, verification, atomic writes, overwrite and path-traversal refusals."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import psutil
import pytest

from engine.backends import BackendOptions
from engine.bundle import export as export_module
from engine.bundle.export import (
    BundleCancelled,
    BundleError,
    BundleExistsError,
    BundleRequest,
    BundleVerificationError,
    export_bundle,
    verify_bundle,
)
from engine.model.inputs import InputRequest
from engine.model.opening import load_model
from engine.optimize.recipe import Recipe
from tests.conftest import SAMPLE_TRANSFORMER, linear_onnx

RUN_SUMMARY = {
    "run_id": 7, "status": "completed", "device": "cpu", "backend": "onnxruntime", "provider": "CPUExecutionProvider",
    "samples": 200, "latency_ms": {"count": 200, "mean_ms": 1.1, "std_ms": 0.1, "min_ms": 0.9, "p50_ms": 1.0,
                                   "p90_ms": 1.2, "p95_ms": 1.3, "p99_ms": 1.6, "max_ms": 2.0},
    "throughput_per_s": 900.0, "energy_per_inference_j": None,
    "energy": [{"device": "rapl", "source": "", "joules_per_inference": None, "unavailable_reason": "no RAPL"}],
    "environment": {"cpu": {"model": "Test CPU"}, "packages": {"onnxruntime": "1.x"}},
}


def _export(model: Path, output: Path, **overrides) -> export_module.BundleResult:
    request = BundleRequest(model=load_model(model), output=output, tool_version="9.9.9",
                            options=BackendOptions(threads=1), **overrides)
    return export_bundle(request, render_report=lambda manifest: f"<html>{manifest['model']['name']}</html>")


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_bundle_holds_every_file_with_its_hash_in_the_manifest(tmp_path):
    # setup
    model = linear_onnx(tmp_path / "linear.onnx", external=True)
    # execute
    result = _export(model, tmp_path / "bundle", benchmark=RUN_SUMMARY, inputs=InputRequest(batch=3))
    manifest = json.loads((result.path / "manifest.json").read_text())
    # assert
    names = {p.name for p in result.path.iterdir()}
    assert names == {"model.onnx", "model.onnx.data", "recipe.json", "manifest.json", "report.html", "predict.py",
                     "README.txt", "sample_inputs.npz"}
    for entry in manifest["files"]:
        content = (result.path / entry["path"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(content).hexdigest() and entry["size_bytes"] == len(content)
    assert {entry["path"] for entry in manifest["files"]} == names - {"manifest.json"}
    assert manifest["schema_version"] == 1 and manifest["tool"]["version"] == "9.9.9"
    assert manifest["model"]["files"] == ["model.onnx", "model.onnx.data"]
    assert manifest["model"]["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["batch", 4]}]
    assert manifest["model"]["outputs"] == [{"name": "y", "dtype": "float32", "shape": ["batch", 3]}]
    assert manifest["runtime"]["provider"] == "CPUExecutionProvider"
    assert manifest["runtime"]["session_options"]["threads"] == 1
    assert manifest["benchmark"]["latency_ms"]["p99_ms"] == 1.6 and manifest["benchmark"]["run_id"] == 7
    assert manifest["fidelity"] is None and "no optimization" in manifest["fidelity_unavailable_reason"]
    assert Recipe.load(result.path / "recipe.json") == Recipe()
    assert manifest["sample_inputs"]["shapes"] == {"x": [3, 4]}
    assert (result.path / "report.html").read_text() == "<html>linear.onnx</html>"


def test_verify_passes_on_a_good_bundle_and_predict_runs_on_its_own(tmp_path):
    # setup
    result = _export(SAMPLE_TRANSFORMER, tmp_path / "bundle")
    # execute
    report = verify_bundle(result.path, run_predict=True)
    synthetic = subprocess.run([sys.executable, "-I", "predict.py", "-o", str(tmp_path / "out.npz")],
                               cwd=result.path, capture_output=True, text=True, timeout=120)
    # assert
    assert report.files_checked == 6 and report.provider == "CPUExecutionProvider"
    assert [(o.name, o.shape, o.max_abs_diff) for o in report.outputs] == [("logits", [1, 2], 0.0)]
    assert synthetic.returncode == 0, synthetic.stderr
    with np.load(tmp_path / "out.npz") as outputs:
        assert outputs["logits"].shape == (1, 2)


@pytest.mark.parametrize(("tamper", "message"), [
    (lambda root: (root / "model.onnx").write_bytes((root / "model.onnx").read_bytes() + b"\0"),
     "model.onnx was modified after export"),
    (lambda root: (root / "predict.py").write_text("print('owned')\n"), "predict.py was modified after export"),
    (lambda root: (root / "extra.sh").write_text("rm -rf ~\n"), "extra.sh is not in manifest.json"),
    (lambda root: (root / "recipe.json").unlink(), "recipe.json is listed in manifest.json but missing"),
])
def test_verify_names_the_tampered_file(tmp_path, tamper, message):
    # setup
    result = _export(SAMPLE_TRANSFORMER, tmp_path / "bundle")
    tamper(result.path)
    # execute / assert
    with pytest.raises(BundleVerificationError, match=message):
        verify_bundle(result.path)


def _rewrite_predict(root: Path, old: str, new: str) -> None:
    """Edit predict.py and update its hash, so that only the run of predict.py can tell."""
    script = root / "predict.py"
    text = script.read_text()
    assert old in text
    script.write_text(text.replace(old, new))
    manifest = json.loads((root / "manifest.json").read_text())
    entry = next(e for e in manifest["files"] if e["path"] == "predict.py")
    entry.update(sha256=hashlib.sha256(script.read_bytes()).hexdigest(), size_bytes=script.stat().st_size)
    (root / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(("old", "new", "message"), [
    ("return dict(zip(names, session.run(None, feed)))",
     "return {n: v + 1e-6 for n, v in zip(names, session.run(None, feed))}",
     "output 'logits': predict.py differs from the studio by up to"),
    ("import numpy as np\n", "import numpy as np\nimport engine.model.handle\n", "predict.py imports the studio's own code"),
    ("outputs = predict(feed, args.provider)", "raise SystemExit('no model here')", "predict.py failed in a clean "
     "process: no model here"),
])
def test_verify_runs_predict_for_real(tmp_path, old, new, message):
    # setup
    result = _export(SAMPLE_TRANSFORMER, tmp_path / "bundle")
    _rewrite_predict(result.path, old, new)
    # execute / assert
    with pytest.raises(BundleVerificationError, match=message):
        verify_bundle(result.path, run_predict=True)


def test_verify_refuses_a_damaged_manifest(tmp_path):
    # setup
    result = _export(SAMPLE_TRANSFORMER, tmp_path / "bundle")
    manifest = json.loads((result.path / "manifest.json").read_text())
    del manifest["runtime"]
    (result.path / "manifest.json").write_text(json.dumps(manifest))
    # execute / assert
    with pytest.raises(BundleVerificationError, match="lacks 'runtime.backend'"):
        verify_bundle(result.path)
    (result.path / "manifest.json").write_text("{not json")
    with pytest.raises(BundleVerificationError, match="not valid JSON"):
        verify_bundle(result.path)


@pytest.mark.parametrize("step", ["readme_text", "finish_manifest"])
def test_a_full_disk_midway_leaves_no_partial_bundle(tmp_path, monkeypatch, step):
    # setup
    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export_module, step, full_disk)
    # execute
    with pytest.raises(BundleError, match="the disk is full; nothing was written"):
        _export(SAMPLE_TRANSFORMER, tmp_path / "bundle")
    # assert
    assert _leftovers(tmp_path, keep=set()) == []


def test_a_failing_report_or_a_cancel_leaves_no_partial_bundle(tmp_path):
    # setup
    cancel = threading.Event()
    request = BundleRequest(model=load_model(SAMPLE_TRANSFORMER), output=tmp_path / "bundle")

    def broken_renderer(manifest):
        raise RuntimeError("template bug")

    def cancel_while_rendering(fraction, message):
        if message == "rendering the report":
            cancel.set()

    # execute
    with pytest.raises(RuntimeError, match="template bug"):
        export_bundle(request, render_report=broken_renderer)
    with pytest.raises(BundleCancelled, match="nothing was written"):
        export_bundle(request, render_report=lambda m: "<html></html>", cancel=cancel, progress=cancel_while_rendering)
    # assert
    assert _leftovers(tmp_path, keep=set()) == []


def test_overwrite_needs_force_and_never_replaces_other_data(tmp_path):
    # setup
    target = tmp_path / "bundle"
    first = _export(SAMPLE_TRANSFORMER, target)
    stamp = json.loads((target / "manifest.json").read_text())["created_at"]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    # execute / assert
    with pytest.raises(BundleExistsError, match="already exists; pass --force"):
        _export(SAMPLE_TRANSFORMER, target)
    assert json.loads((target / "manifest.json").read_text())["created_at"] == stamp
    replaced = _export(linear_onnx(tmp_path / "other.onnx"), target, force=True)
    assert replaced.path == first.path
    assert json.loads((target / "manifest.json").read_text())["model"]["name"] == "other.onnx"
    with pytest.raises(BundleExistsError, match="is not a deployment bundle"):
        _export(SAMPLE_TRANSFORMER, tmp_path / "notes", force=True)
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me"
    assert _leftovers(tmp_path, keep={"bundle", "notes", "other.onnx"}) == []


def test_a_crafted_manifest_cannot_reach_outside_the_bundle(tmp_path):
    # setup
    result = _export(SAMPLE_TRANSFORMER, tmp_path / "bundle")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    manifest = json.loads((result.path / "manifest.json").read_text())
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    manifest["files"].append({"path": "../secret.txt", "sha256": digest, "size_bytes": 7})
    (result.path / "manifest.json").write_text(json.dumps(manifest))
    # execute / assert
    with pytest.raises(BundleVerificationError, match="'../secret.txt', which is outside the bundle folder"):
        verify_bundle(result.path)
    manifest["files"][-1]["path"] = str(secret)
    (result.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleVerificationError, match="outside the bundle folder"):
        verify_bundle(result.path)


def test_a_zip_with_an_escaping_member_is_refused(tmp_path):
    # setup
    archive_path = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.writestr("bundle/manifest.json", "{}")
        archive.writestr("bundle/../../escaped.txt", "gotcha")
    # execute / assert
    with pytest.raises(BundleVerificationError, match="outside the bundle folder"):
        verify_bundle(archive_path)
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_zipped_bundle_is_written_atomically_and_verifies(tmp_path):
    # execute
    result = _export(SAMPLE_TRANSFORMER, tmp_path / "bundle", zip=True)
    report = verify_bundle(result.path, run_predict=True)
    # assert
    assert result.path == tmp_path / "bundle.zip" and result.manifest_path is None
    with zipfile.ZipFile(result.path) as archive:
        assert "bundle/manifest.json" in archive.namelist() and "bundle/predict.py" in archive.namelist()
    assert report.outputs[0].max_abs_diff == 0.0
    assert _leftovers(tmp_path, keep={"bundle.zip"}) == []


def test_conversions_the_bundle_cannot_do_are_refused_before_any_work(tmp_path):
    # execute / assert
    with pytest.raises(BundleError, match="is ONNX, which cannot become torchscript"):
        _export(SAMPLE_TRANSFORMER, tmp_path / "bundle", format="torchscript")
    with pytest.raises(BundleError, match="unknown bundle format 'tflite'"):
        _export(SAMPLE_TRANSFORMER, tmp_path / "bundle", format="tflite")
    with pytest.raises(BundleError, match="folder .* does not exist"):
        _export(SAMPLE_TRANSFORMER, tmp_path / "missing" / "bundle")
    with pytest.raises(BundleError, match="unknown field"):
        _export(SAMPLE_TRANSFORMER, tmp_path / "bundle", benchmark={**RUN_SUMMARY, "speedup": 9.0})
    assert _leftovers(tmp_path, keep=set()) == []


def test_verifying_runs_no_bundle_code_unless_asked(tmp_path):
    # setup: a re-hashed predict.py that would leave a mark if it ran
    result = _export(SAMPLE_TRANSFORMER, tmp_path / "bundle")
    mark = tmp_path / "predict_ran"
    _rewrite_predict(result.path, "import numpy as np\n", f"import numpy as np\nopen({str(mark)!r}, 'w').close()\n")

    # execute
    report = verify_bundle(result.path)

    # assert: the hashes agree with the (re-hashed) manifest; nothing ran
    assert not report.predict_ran and report.outputs == () and not mark.exists()
    assert "predict.py was not run" in report.text()


def test_a_relative_bundle_path_verifies_and_runs_predict(tmp_path, monkeypatch):
    # setup
    _export(SAMPLE_TRANSFORMER, tmp_path / "bundle")
    monkeypatch.chdir(tmp_path)

    # execute
    report = verify_bundle("bundle", run_predict=True)

    # assert
    assert report.bundle == "bundle" and report.outputs[0].max_abs_diff == 0.0


def test_staging_left_by_a_killed_export_is_removed_by_the_next_export_to_the_same_place(tmp_path):
    # setup: the staging folder of an export whose process is gone (kill -9), and one of an export still running
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / ".bundle.abc123.partial"
    (stale / "bundle").mkdir(parents=True)
    (stale / "bundle" / "model.onnx").write_bytes(b"\0" * 1000)
    (stale / ".owner").write_text(f"{gone.stdout.strip()} 12345.000")
    live = tmp_path / ".bundle.def456.partial"  # another export to the same place, still running
    live.mkdir()
    (live / ".owner").write_text(f"{os.getpid()} {psutil.Process().create_time():.3f}")

    # execute
    _export(SAMPLE_TRANSFORMER, tmp_path / "bundle")

    # assert
    assert not stale.exists() and live.exists()
    assert _leftovers(tmp_path, keep={"bundle", ".bundle.def456.partial"}) == []


def test_predict_runs_without_network_where_the_system_allows_it(tmp_path):
    # setup: a re-hashed predict.py that records the network interfaces it can see
    from engine.bundle.predict_child import no_network_prefix

    result = _export(SAMPLE_TRANSFORMER, tmp_path / "bundle")
    seen = tmp_path / "interfaces.txt"
    _rewrite_predict(result.path, "import numpy as np\n", "import numpy as np\nimport socket\n"
                     f"open({str(seen)!r}, 'w').write(' '.join(n for _, n in socket.if_nameindex()))\n")

    # execute
    report = verify_bundle(result.path, run_predict=True)

    # assert: only the loopback interface inside; where namespaces are not allowed, the report says so
    if no_network_prefix():
        assert seen.read_text() == "lo" and not report.notes
    else:
        assert any("ran with network access" in note for note in report.notes)
