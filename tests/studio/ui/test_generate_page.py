from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.studio.ui.conftest import JOB_TIMEOUT_MS, error_dialogs, idle


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    from engine.generative.random_models import build_random_causal_lm

    return build_random_causal_lm(tmp_path_factory.mktemp("llama") / "model", preset="tiny", family="llama")


def _run(qtbot, window):
    window.show_page("Generate")
    qtbot.mouseClick(window.generate_page.run_button, Qt.MouseButton.LeftButton)


def _settings(page, folder, mode="generation"):
    page.folder.setText(str(folder))
    page.mode.setCurrentIndex(page.mode.findData(mode))
    page.prompt_tokens.setValue(12)
    page.new_tokens.setValue(6)
    page.requests.setValue(2)
    page.shared_prefix.setValue(16)


def test_generation_streams_steps_and_shows_ttft_and_tpot(qtbot, window, tiny_llama):
    page = window.generate_page
    _settings(page, tiny_llama)
    _run(qtbot, window)
    qtbot.waitUntil(lambda: idle(window), timeout=JOB_TIMEOUT_MS)
    assert not error_dialogs()
    assert len(page.step_curve.getData()[1]) == 2 * 6  # one prefill and five decode steps per request
    assert page.tiles["ttft"].value.text().endswith("ms") and page.tiles["tpot"].value.text().endswith("ms")
    assert "saved as run 1" in page.status.text() and not page.timer.isActive()
    qtbot.waitUntil(lambda: window.history.table.rowCount() == 1, timeout=JOB_TIMEOUT_MS)


def test_prefix_reuse_results_table(qtbot, window, tiny_llama):
    page = window.generate_page
    _settings(page, tiny_llama, "prefix_reuse")
    _run(qtbot, window)
    qtbot.waitUntil(lambda: idle(window), timeout=JOB_TIMEOUT_MS)
    rows = {page.results.item(r, 0).text(): page.results.item(r, 1).text() for r in range(page.results.rowCount())}
    assert rows["outputs identical with reuse"] == "True" and rows["TTFT speedup"].endswith("×")


def test_a_missing_folder_is_explained(qtbot, window, tmp_path):
    page = window.generate_page
    _settings(page, tmp_path / "absent")
    _run(qtbot, window)
    qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=JOB_TIMEOUT_MS)
    assert "no such folder" in error_dialogs()[0].text()
    assert page.run_button.isEnabled() and not page.timer.isActive()


def test_the_generate_page_fits_a_1280_by_720_window_in_the_studio_theme(qapp, window):
    # setup: the studio's theme and fonts, and the widest value a tile shows
    from studio.ui.widgets.theme import apply_theme

    style, palette = qapp.style().name(), qapp.palette()
    apply_theme(qapp, "light")
    for tile in window.generate_page.tiles.values():
        tile.show_value("unavailable", "gpu: no NVIDIA driver: the NVML library (libnvidia-ml.so.1) was not found")
    # execute
    try:
        window.show_page("Generate")
        needed = window.centralWidget().minimumSizeHint()
    finally:
        qapp.setStyle(style)
        qapp.setPalette(palette)
    # assert: the sidebar and the page together fit the window's content area
    assert needed.width() <= 1280 and needed.height() <= 720, needed
