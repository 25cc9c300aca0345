"""A main window on a private settings file and database, with every background job finished at teardown.

Qt is imported inside the fixtures and helpers, not here: test_state.py runs in the Qt-free job beside them.
"""

from __future__ import annotations

import pytest

from engine.device import discovery as devices

JOB_TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def cpu_only_machine(monkeypatch):
    monkeypatch.setattr(devices, "nvml_gpus", lambda: ([], None, "no NVIDIA driver"))


@pytest.fixture
def window(qtbot, qapp, tmp_path, private_database):
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from studio.ui.main_window import MainWindow

    qapp.setQuitOnLastWindowClosed(False)  # a closed test window must not stop later event loops
    settings = QSettings(str(tmp_path / "studio.ini"), QSettings.Format.IniFormat)
    main = MainWindow(settings)
    qtbot.addWidget(main)
    main.show()
    main.start(None)
    qtbot.waitUntil(lambda: main.state.model is not None and idle(main) and main.dashboard is not None,
                    timeout=JOB_TIMEOUT_MS)
    yield main
    main.state.jobs.cancel("run")
    qtbot.waitUntil(lambda: idle(main), timeout=JOB_TIMEOUT_MS)
    main.close()
    leaked = [timer.parent().__class__.__name__ for timer in main.findChildren(QTimer) if timer.isActive()]
    assert not leaked, f"timers still running after the window closed: {leaked}"
    for dialog in QApplication.topLevelWidgets():
        if isinstance(dialog, QMessageBox):
            dialog.close()
            dialog.deleteLater()


def idle(main) -> bool:
    """Every job has ended, and its end has reached the state and the pages."""
    return main.runner.idle


def error_dialogs() -> list:
    from PySide6.QtWidgets import QApplication, QMessageBox

    return [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.objectName() == "errorDialog"
            and w.isVisible()]


def fast_run_settings(main, iterations: int = 60, duration_s: float = 0.0) -> None:
    """Typed into the Run settings page, as a user would."""
    main.run_settings.warmup.setValue(2)
    main.run_settings.iterations.setValue(iterations)
    main.run_settings.duration.setValue(duration_s)
    main.run_settings.threads.setValue(1)
    main.run_settings.telemetry_hz.setValue(20)
