"""What the screenshot scripts share: a throwaway studio folder, a themed main window, and a wait that runs Qt's
event loop until a condition holds, then lets the last paint settle."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path


def throwaway_studio(prefix: str) -> Path:
    """A temporary folder for the database, data and cache, so screenshots never touch the user's."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(AUTOGLM_STUDIO_DB=str(work / "studio.db"), AUTOGLM_STUDIO_DATA=str(work / "data"),
                      AUTOGLM_STUDIO_CACHE=str(work / "cache"))
    return work


def themed_window(app, work: Path, theme: str, size: tuple[int, int] = (1280, 720)):
    """A shown main window in `theme`, with its own settings file in `work`."""
    from PySide6.QtCore import QSettings

    from studio.ui.main_window import MainWindow
    from studio.ui.widgets.theme import apply_theme

    apply_theme(app, theme)
    window = MainWindow(QSettings(str(work / f"{theme}.ini"), QSettings.Format.IniFormat))
    window.resize(*size)
    window.show()
    return window


def wait_until(app, condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        app.processEvents()
        time.sleep(0.01)
    settle = time.monotonic() + 0.3
    while time.monotonic() < settle:
        app.processEvents()


def screenshot_app(out: Path, patience_s: float):
    """The QApplication of a screenshot script, the output folder made, and its wait(condition[, seconds])."""
    import sys

    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv)
    app.setQuitOnLastWindowClosed(False)
    out.mkdir(parents=True, exist_ok=True)

    def wait(condition, seconds: float = patience_s) -> None:
        wait_until(app, condition, seconds)

    return app, wait
