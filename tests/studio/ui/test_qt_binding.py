import sys

from PySide6.QtCore import QRectF
from PySide6.QtGui import QBrush, QColor, QPainter, QPen, QPixmap

CALLS = 2000


def test_painting_does_not_leak_references_to_none(qapp):
    """PySide6 6.12.0 decremented None's refcount on every QPainter.setPen/setBrush/drawRect call; a plot
    window then dies with 'deallocating None' after enough repaints. Guard against any binding that does."""
    pixmap = QPixmap(8, 8)
    painter = QPainter(pixmap)
    pen, brush, rect = QPen(), QBrush(QColor(1, 2, 3)), QRectF(0, 0, 1, 1)
    try:
        for call in (lambda: painter.setPen(pen), lambda: painter.setBrush(brush), lambda: painter.drawRect(rect)):
            call()  # first call may cache signatures
            before = sys.getrefcount(None)
            for _ in range(CALLS):
                call()
            assert sys.getrefcount(None) - before > -CALLS // 2
    finally:
        painter.end()
