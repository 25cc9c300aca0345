"""Garbage collection only in the GUI thread, while the window lives.

Python's cyclic collector runs in whichever thread happens to allocate; a job thread busy in SQLAlchemy
or ONNX Runtime can then finalize Qt objects (pyqtgraph items, widgets) while the GUI thread is
painting. Destroying a QObject from the wrong thread needs Qt locks the painting thread holds, while
that thread waits for the GIL: the app freezes. So automatic collection is switched off and a timer in
the GUI thread collects instead (the technique of pyqtgraph's GarbageCollector, with an end).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

CHECK_INTERVAL_MS = 500


class GuiThreadGarbageCollector:
    def __init__(self, parent: QObject):
        self._was_enabled = gc.isenabled()
        self._thresholds = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(parent)
        self.timer.setInterval(CHECK_INTERVAL_MS)
        self.timer.timeout.connect(self.collect_due)
        self.timer.start()

    def collect_due(self) -> None:
        """What automatic collection would have done by now, generation by generation."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self._thresholds[generation]:
                gc.collect(generation)
                return

    def stop(self) -> None:
        self.timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()
