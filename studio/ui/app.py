"""Start the desktop studio: QApplication, theme, main window on the last or sample model."""

from __future__ import annotations

import sys

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from studio.ui.main_window import MainWindow
from studio.ui.widgets.theme import apply_theme

ORGANIZATION = "Open-AutoGLM"
APPLICATION = "Studio"


def run_gui(model: str | None = None, db_url: str | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    settings = QSettings()
    apply_theme(app, str(settings.value("view/theme", "system")))
    window = MainWindow(settings, db_url)
    window.show()
    window.start(model)
    code = app.exec()
    # Destroy the widgets while Qt is still whole: pyqtgraph's linked plots crash if Python's final
    # garbage collection tears them down instead.
    window.deleteLater()
    app.processEvents()
    return code
