"""The one way errors reach the user in the GUI: the message, and the traceback under "Show Details…"."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def error_dialog(parent: QWidget | None, title: str, message: str, details: str = "") -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Close, parent)
    box.setObjectName("errorDialog")
    if details:
        box.setDetailedText(details)
    return box


def show_error(parent: QWidget | None, title: str, message: str, details: str = "") -> None:
    """Non-blocking: the app keeps working behind the dialog."""
    box = error_dialog(parent, title, message, details)
    box.setModal(False)
    box.show()
