"""HTML reports: a single run, a comparison, the GUI's comparison export, and a bundle's report.html."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser

import numpy as np
import pytest

import storage
from engine.bundle.export import BundleRequest, export_bundle, verify_bundle
from engine.model.opening import load_model
from storage import EnergyFigure, ModelInfo, RunStart
from studio.reports import run_report
from studio.reports.bundle_report import bundle_report_renderer
from studio.reports.comparison_report import comparison_html
from studio.reports.run_report import write_run_report
from studio.usecases.bundles import run_summary
from tests.conftest import SAMPLE_TRANSFORMER

ENVIRONMENT = {"cpu": {"model": "Test CPU", "flags": ["avx2"]}, "packages": {"onnxruntime": "1.20"},
               "thread_environment": {}}


def _save_run(db, *, median_ns: int, seed: int, environment: dict, energy: list[EnergyFigure], notes: str = "") -> int:
    """A completed run with seeded log-normal latencies and two telemetry series, written through storage."""
    model_id = db.catalog.register_model(ModelInfo(path=str(SAMPLE_TRANSFORMER), sha256="ab" * 32, format="onnx",
                                                   size_bytes=1234))
    writer = db.runs.start_run(RunStart(device="cpu", backend="onnxruntime", model_id=model_id,
                                        provider="CPUExecutionProvider", settings={"threads": 1},
                                        environment=environment, tags=("<b>tag</b>",), notes=notes))
    rng = np.random.default_rng(seed)
    latencies = (median_ns * rng.lognormal(0.0, 0.1, 400)).astype(np.int64)
    starts = 1_000_000_000 + np.concatenate([[0], np.cumsum(latencies[:-1] + 1_000)])
    writer.append_latency(starts, latencies, 1)
    times = 1_000_000_000 + np.arange(20, dtype=np.int64) * 50_000_000
    writer.append_telemetry("utilisation", "cpu", times, rng.uniform(40, 90, 20))
    writer.append_telemetry("temperature", "cpu", times, np.linspace(50, 60, 20))
    summary = {"inputs": {"source": "synthetic (seed 0)", "batch_size": 1, "shapes": {"input_ids": [1, 16]}},
               "cold_start_ms": {"load": 1.0, "session": 2.0, "first_inference": 0.5, "total": 3.5}}
    return writer.finish("completed", summary=summary, energy=energy).id


@pytest.fixture
def two_runs(private_database):
    with storage.open_database(None) as db:
        first = _save_run(db, median_ns=2_000_000, seed=1, environment=ENVIRONMENT, energy=[
            EnergyFigure("cpu", "RAPL energy_uj counter", 0.004, 1.6),
            EnergyFigure("gpu", "", None, unavailable_reason="no NVIDIA driver")])
        second = _save_run(db, median_ns=1_000_000, seed=2, notes="<script>alert(1)</script>",
                           environment={**ENVIRONMENT, "packages": {"onnxruntime": "1.21"}},
                           energy=[EnergyFigure("cpu", "RAPL energy_uj counter", 0.002, 0.8)])
        runs = [db.runs.load_run(run_id) for run_id in (first, second)]
    return runs


class _Document(HTMLParser):
    """Collects the inline images and checks that no script or external resource is referenced."""

    def __init__(self, text: str):
        super().__init__()
        self.images: list[str] = []
        self.external: list[str] = []
        self.scripts = 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        self.scripts += tag == "script"
        if tag == "img":
            self.images.append(values["src"])
        for name in ("src", "href"):
            if values.get(name) and not values[name].startswith("data:"):
                self.external.append(values[name])


def _svg_roots(document: _Document) -> list[ElementTree.Element]:
    prefix = "data:image/svg+xml;base64,"
    return [ElementTree.fromstring(base64.b64decode(src.removeprefix(prefix))) for src in document.images]


def test_single_run_report_is_self_contained_with_plots(tmp_path, two_runs):
    # setup
    run = two_runs[0]
    output = tmp_path / "report.html"
    # execute
    written = write_run_report(None, run.record.id, [], output)
    text = written.read_text(encoding="utf-8")
    document = _Document(text)
    # assert
    expected_p50 = np.percentile(run.latency.latencies_ns / 1e6, 50)
    assert f"{expected_p50:.4f} ms" in text
    assert len(_svg_roots(document)) == 4  # histogram, CDF, telemetry, energy
    assert document.scripts == 0 and document.external == []
    assert any("cpu · temperature" in base64.b64decode(src.split(",")[1]).decode() for src in document.images)
    assert "unavailable: no NVIDIA driver" in text and "4 mJ" in text
    assert "3.50 ms (load 1.00" in text and "Environment fingerprint" in text
    assert "&lt;b&gt;tag&lt;/b&gt;" in text and "<b>tag</b>" not in text
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_comparison_report_has_intervals_energy_and_environment_differences(tmp_path, two_runs):
    # setup
    baseline, candidate = (run.record.id for run in two_runs)
    # execute
    text = write_run_report(None, baseline, [candidate], tmp_path / "compare.html").read_text()
    document = _Document(text)
    # assert
    pair = storage.compare_runs(two_runs).pairs[0]
    assert pair.verdict == "faster"
    assert f"{pair.ci_low:.3f} – {pair.ci_high:.3f}" in text and html_escape(pair.explanation) in text
    assert re.search(r"<code>packages\.onnxruntime</code></td><td>1\.20</td><td>1\.21</td>", text)
    assert "2 mJ" in text and "4 mJ" in text and "not measured in this run" in text
    assert len(_svg_roots(document)) == 4
    assert "<script>" not in text and document.scripts == 0


def test_gui_comparison_export_uses_the_same_plots(two_runs):
    # setup
    comparison = storage.compare_runs(two_runs)
    latencies = {run.record.id: run.latency.latencies_ns / 1e6 for run in two_runs}
    # execute
    text = comparison_html(comparison, latencies)
    document = _Document(text)
    # assert
    assert len(_svg_roots(document)) == 2 and "Latency CDF" in text
    assert comparison.pairs[0].explanation.split(":")[0] in text
    assert "environments differ in packages.onnxruntime" in text


def test_bundle_report_holds_model_card_and_the_comparison_with_the_original_run(tmp_path, two_runs):
    # setup
    original, run = two_runs
    renderer = bundle_report_renderer(run, original=original)
    request = BundleRequest(model=load_model(SAMPLE_TRANSFORMER), output=tmp_path / "bundle",
                            benchmark=run_summary(run), tool_version="1.2.3")
    # execute
    result = export_bundle(request, render_report=renderer)
    text = (result.path / "report.html").read_text()
    manifest = json.loads((result.path / "manifest.json").read_text())
    # assert
    assert manifest["report"] == "report.html" and "report.html" in [e["path"] for e in manifest["files"]]
    assert manifest["benchmark"]["latency_ms"]["count"] == 400 and manifest["benchmark"]["run_id"] == run.record.id
    assert "Model card" in text and "input_ids" in text and "batch × sequence" in text
    assert "no optimization" in text and "faster than run" in text
    assert verify_bundle(result.path, run_predict=True).outputs[0].max_abs_diff == 0.0


def test_a_write_failing_midway_leaves_the_previous_file_alone(tmp_path, two_runs, monkeypatch):
    # setup: text that cannot be encoded, after a first megabyte that can, fails the write half way through
    output = tmp_path / "report.html"
    output.write_text("previous")
    monkeypatch.setattr(run_report, "render", lambda context: "<html>" + "x" * (1 << 20) + "\ud800")
    # execute
    with pytest.raises(UnicodeEncodeError):
        write_run_report(None, two_runs[0].record.id, [], output)
    # assert
    assert output.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["report.html"]


def html_escape(text: str) -> str:
    import html

    return html.escape(text)
