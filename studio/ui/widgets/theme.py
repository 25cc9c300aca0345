"""Light and dark themes (Fusion style with a palette), and plot colours that stay readable in both."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("system", "light", "dark")
# One colour per compared run or device, distinguishable on light and dark backgrounds.
SERIES_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def effective_theme(choice: str) -> str:
    if choice != "system":
        return choice
    scheme = QGuiApplication.styleHints().colorScheme()
    return "dark" if scheme == Qt.ColorScheme.Dark else "light"


def apply_theme(app: QApplication, choice: str) -> str:
    """Applies `choice` (system, light or dark) and returns the theme actually shown."""
    app.setStyle("Fusion")
    theme = effective_theme(choice)
    app.setPalette(_dark_palette() if theme == "dark" else app.style().standardPalette())
    return theme


def plot_background() -> QColor:
    return QApplication.palette().color(QPalette.ColorRole.Base)


def plot_foreground() -> QColor:
    return QApplication.palette().color(QPalette.ColorRole.Text)


def alert_colour(level: str) -> str:
    """The text colour of a "warning" (a guess to check) or an "error" (a rejected result), readable on the
    current palette's background."""
    dark = QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128
    return {("warning", False): "#b35c00", ("warning", True): "#ffb74d",
            ("error", False): "#b00020", ("error", True): "#ff6b6b"}[(level, dark)]


def _dark_palette() -> QPalette:
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#2b2d30", QPalette.ColorRole.WindowText: "#e6e6e6",
        QPalette.ColorRole.Base: "#1e1f22", QPalette.ColorRole.AlternateBase: "#2b2d30",
        QPalette.ColorRole.ToolTipBase: "#3c3f41", QPalette.ColorRole.ToolTipText: "#e6e6e6",
        QPalette.ColorRole.Text: "#e6e6e6", QPalette.ColorRole.Button: "#3c3f41",
        QPalette.ColorRole.ButtonText: "#e6e6e6", QPalette.ColorRole.BrightText: "#ff6b6b",
        QPalette.ColorRole.Highlight: "#2f65ca", QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#6ea8fe", QPalette.ColorRole.PlaceholderText: "#8c8c8c",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7a7a"))
    return palette
