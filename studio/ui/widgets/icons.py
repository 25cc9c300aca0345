"""Icons from resources/icons (SVG), tinted to the current palette's text colour so both themes read well."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication

ICON_SIZE = 32


@cache
def _svg(name: str) -> bytes:
    return (files("studio.resources") / "icons" / f"{name}.svg").read_bytes()


def icon(name: str) -> QIcon:
    colour = QApplication.palette().color(QApplication.palette().ColorRole.ButtonText).name()
    renderer = QSvgRenderer(QByteArray(_svg(name).replace(b"currentColor", colour.encode())))
    pixmap = QPixmap(ICON_SIZE, ICON_SIZE)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    renderer.render(painter)
    painter.end()
    return QIcon(pixmap)
