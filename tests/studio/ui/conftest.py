"""A main window on a private settings file and database, with every background job finished at teardown."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from engine.device import discovery as devices
from studio.ui.main_window import MainWindow

JOB_TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def cpu_only_machine(monkeypatch):
    monkeypatch.setattr(devices, "nvml_gpus", lambda: ([], None, "no NVIDIA driver"))


@pytest.fixture
def window(qtbot, qapp, tmp_path, private_database):
    qapp.setQuitOnLastWindowClosed(False)  # a closed test window must not stop later event loops
    settings = QSettings(str(tmp_path / "studio.ini"), QSettings.Format.IniFormat)
    main = MainWindow(settings)
    qtbot.addWidget(main)
    main.show()
    main.start(None)
    qtbot.waitUntil(lambda: main.handle is not None and not main.jobs and main.dashboard is not None,
                    timeout=JOB_TIMEOUT_MS)
    yield main
    if main.run_job is not None:
        main.run_job.stop()
    qtbot.waitUntil(lambda: not main.jobs, timeout=JOB_TIMEOUT_MS)
    main.close()
    leaked = [timer.parent().__class__.__name__ for timer in main.findChildren(QTimer) if timer.isActive()]
    assert not leaked, f"timers still running after the window closed: {leaked}"
    for dialog in QApplication.topLevelWidgets():
        if isinstance(dialog, QMessageBox):
            dialog.close()
            dialog.deleteLater()


def error_dialogs() -> list[QMessageBox]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.objectName() == "errorDialog"
            and w.isVisible()]


def fast_run_settings(main: MainWindow, iterations: int = 60, duration_s: float = 0.0) -> None:
    main.run_settings.warmup.setValue(2)
    main.run_settings.iterations.setValue(iterations)
    main.run_settings.duration.setValue(duration_s)
    main.run_settings.threads.setValue(1)
    main.run_settings.telemetry_hz.setValue(20)
