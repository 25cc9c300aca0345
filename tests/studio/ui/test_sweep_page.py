"""The Sweep page and the Layers view, driven as a user drives them (buttons, clicks) on tiny models."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QFileDialog

from engine.measure.runner import BenchmarkSettings
from engine.profiling.layer_profile import NodeEvent, build_profile
from studio import usecases
from studio.ui.pages.layers_view import FALLBACK_COLOUR, LayersView
from studio.ui.pages.sweep_page import SweepPage
from studio.ui.widgets.theme import SERIES_COLOURS
from tests.conftest import linear_onnx
from tests.studio.ui.conftest import JOB_TIMEOUT_MS, error_dialogs, idle


@pytest.fixture
def model(tmp_path) -> str:
    return str(linear_onnx(tmp_path / "linear.onnx"))


@pytest.fixture
def page(qtbot, window, model, monkeypatch) -> SweepPage:
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (model, ""))
    window.actions["open"].trigger()
    qtbot.waitUntil(lambda: window.state.model.location == model and idle(window), timeout=JOB_TIMEOUT_MS)
    window.show_page("Sweep")
    sweep = window.sweep_page
    sweep.batches.setText("1,2")
    sweep.threads.setText("1")
    sweep.point_cap.setValue(0.1)
    return sweep


def _click(qtbot, button) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _run(qtbot, window, page: SweepPage) -> None:
    _click(qtbot, page.run_button)
    assert page.job is not None and not page.run_button.isEnabled() and page.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: page.job is None and idle(window), timeout=JOB_TIMEOUT_MS)


def test_a_tiny_sweep_fills_the_heat_map_the_frontier_and_the_points(qtbot, window, page):
    # setup
    live: list = []
    finished: list = []
    page.point_measured.connect(lambda summary, run_id: live.append((summary.key, run_id)))
    window.state.jobs.finished.connect(lambda job: job.kind == "sweep" and finished.append(job.result))
    page.latency_limit.setValue(1000.0)

    # execute
    _run(qtbot, window, page)

    # assert
    report = page.report
    assert not error_dialogs() and report.status == "completed" and len(report.summaries) == 2
    assert finished == [report]
    assert sorted(live) == sorted(report.run_ids.items())  # each point reached the page as it was measured
    by_batch = {s.point.batch: s for s in report.summaries}
    plots = page.plots
    assert np.allclose(plots.image.image[:, 0], [by_batch[1].throughput_per_s, by_batch[2].throughput_per_s])
    assert plots.colour_bar.levels() == pytest.approx((min(plots.image.image[:, 0]), max(plots.image.image[:, 0])))
    cell_texts = [item.textItem.toPlainText() for item in plots._cell_items if isinstance(item, pg.TextItem)]
    assert len(cell_texts) == 2 and all(text.endswith("ms") and "/s" in text for text in cell_texts)
    assert len(plots.scatter.data) == 2 and len(plots.frontier_curve.xData) == len(report.analysis.frontier) >= 1
    assert plots.limit_line.isVisible() and plots.limit_line.value() == 1000.0
    assert page.points.rowCount() == 2 and "Fastest under 1000 ms p99: cpu original batch" in page.choices.text()
    assert page.status.text() == f"Sweep {report.sweep_id} completed: 2 points measured"
    assert page.run_button.isEnabled() and not page.cancel_button.isEnabled()

    # execute: a limit no point meets re-analyses what was measured
    page.latency_limit.setValue(0.001)  # 1 µs: less than any ONNX Runtime call

    # assert
    assert page.analysis.fastest.summary is None and "no point kept p99 within 0.001 ms" in page.choices.text()
    assert page.plots.limit_line.value() == 0.001
    qtbot.waitUntil(lambda: window.history.table.rowCount() == 2, timeout=JOB_TIMEOUT_MS)  # each point is a run


def test_open_a_points_run_from_the_table_or_the_heat_map(qtbot, window, page):
    # setup
    _run(qtbot, window, page)
    batch_two = next(s for s in page.report.summaries if s.point.batch == 2)
    assert not page.open_button.isEnabled()

    # execute: a click on the second row of the map (batch 2), then on the button
    heat = page.plots.heat
    scene_point = heat.getPlotItem().vb.mapViewToScene(QPointF(0.5, 1.5))
    qtbot.mouseClick(heat.viewport(), Qt.MouseButton.LeftButton, pos=heat.mapFromScene(scene_point))
    with qtbot.waitSignal(page.open_run, timeout=1000) as opened:
        _click(qtbot, page.open_button)

    # assert
    assert page.selected_key == batch_two.key and opened.args == [page.report.run_ids[batch_two.key]]
    selected_row = page.points.selectionModel().selectedRows()[0].row()
    assert page.points.item(selected_row, 0).text() == batch_two.point.label()
    qtbot.waitUntil(lambda: "Saved run" in window.dashboard.status.text() and idle(window), timeout=JOB_TIMEOUT_MS)
    assert window.stack.currentWidget() is window.dashboard


def test_bad_settings_are_explained_and_nothing_starts(qtbot, page):
    page.batches.setText("1,x")
    _click(qtbot, page.run_button)
    assert page.job is None
    qtbot.waitUntil(lambda: bool(error_dialogs()))
    assert "expected comma-separated batch sizes" in error_dialogs()[0].text()


def test_cancel_stops_the_sweep_after_the_point_in_progress(qtbot, window, page):
    # setup: long enough points that the cancel lands while the second one runs
    page.batches.setText("1,2,4")
    page.point_cap.setValue(1.0)
    page.point_measured.connect(lambda summary, run_id: page.cancel_button.click())

    # execute
    _run(qtbot, window, page)

    # assert
    assert page.report.status == "cancelled" and not error_dialogs()
    assert [s.status for s in page.report.summaries].count("completed") >= 1 and len(page.report.summaries) < 3
    assert f"Sweep {page.report.sweep_id} cancelled" in page.status.text()


def test_the_layers_view_fills_from_a_stored_profile(qtbot, window, model):
    # setup
    request = usecases.BenchRequest(model=model, telemetry_hz=None,
                                    settings=BenchmarkSettings(warmup=1, min_iterations=5, min_duration_s=0.0))
    stored = usecases.profile_model(request, iterations=3)
    view = window.layers_view
    window.show_page("Layers")

    # execute
    view.run_field.setValue(stored.bench.run_id)
    _click(qtbot, view.show_button)
    qtbot.waitUntil(lambda: view.profile is not None and idle(window), timeout=JOB_TIMEOUT_MS)

    # assert
    profile = stored.profile
    assert view.profile == profile and view.nodes.rowCount() == len(profile.nodes)
    assert {view.nodes.item(row, 0).text() for row in range(len(profile.nodes))} == {n.name for n in profile.nodes}
    assert len(view.bar_item.opts["width"]) == len(profile.op_types)
    assert np.allclose(view.bar_item.opts["width"], [op.share * 100 for op in profile.op_types])
    assert view.placement.text().startswith("Placement: all") and "FALLBACK" not in view.placement.text()
    assert view.heading.text().startswith(f"Run {stored.bench.run_id}: linear.onnx on CPUExecutionProvider")


def test_the_layers_view_says_when_a_run_has_no_profile_and_flags_fallback(qtbot, window):
    # setup: a profile whose two CPU nodes were meant for CUDA
    events = [NodeEvent(name, "Conv" if name == "conv" else "TopK", provider, 10.0, run, macs=100 if name == "conv"
                        else None) for run in range(2) for name, provider in (("conv", "CUDAExecutionProvider"),
                                                                              ("topk", "CPUExecutionProvider"))]
    profile = build_profile(events, runtime="onnxruntime", model="m.onnx", requested="CUDAExecutionProvider",
                            batch_size=1, iterations=2, run_walls_ns=[25_000, 25_000])
    view = LayersView(window.runner, window.state.db_url)
    qtbot.addWidget(view)

    # execute
    view.show_profile(None, 7)
    empty = (view.heading.text(), view.nodes.rowCount())
    view.show_profile(profile, 8)

    # assert
    assert empty == ("Run 7 has no layer profile. `autoglm-studio profile MODEL` times a model, then profiles it in "
                     "a separate run stored with the timed one.", 0)
    assert "FALLBACK: 1 of 2 nodes (50.0% of node time)" in view.placement.text()
    flags = {view.nodes.item(row, 0).text(): view.nodes.item(row, 7).text() for row in range(2)}
    assert flags == {"conv": "yes", "topk": "NO: fell back"}
    assert [brush.color().name() for brush in view.bar_item.opts["brushes"]] == [SERIES_COLOURS[0], FALLBACK_COLOUR]
