"""Long work off the GUI thread: a callable taking (cancel, progress) runs on a plain Python thread, and what it
reports comes back to the GUI thread as queued Qt signals.

The worker only emits; the slots (and the callbacks they call) run in the GUI thread, so no widget and no state is
ever touched from the worker (DESIGN §3).
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from core.progress import Progress

Work = Callable[[threading.Event, Progress], Any]


class Job(QObject):
    progressed = Signal(float, str)
    finished = Signal()

    def __init__(self, name: str, work: Work, cancel: threading.Event, *, on_progress: Progress,
                 on_finished: Callable[[Job], None], parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self.cancel = cancel
        self.result: Any = None
        self.error: tuple[str, str] | None = None  # message, traceback: set when the work raised
        self._work = work
        self._on_progress = on_progress
        self._on_finished = on_finished
        self._thread = threading.Thread(target=self._run, name=f"job-{name}", daemon=True)
        self.progressed.connect(self._deliver_progress)
        self.finished.connect(self._deliver_end)

    def start(self) -> None:
        self._thread.start()

    def wait(self, timeout_s: float | None = None) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            self.result = self._work(self.cancel, self.progressed.emit)
        except BaseException as error:  # noqa: BLE001 - every failure reaches the user in a dialog, with its
            # traceback: user code's sys.exit() or own BaseException too (no KeyboardInterrupt reaches this thread)
            self.error = (" ".join(str(error).split()) or type(error).__name__, traceback.format_exc())
        finally:
            self.finished.emit()

    @Slot(float, str)
    def _deliver_progress(self, fraction: float, message: str) -> None:
        self._on_progress(fraction, message)

    @Slot()
    def _deliver_end(self) -> None:
        self._thread.join()  # it has emitted its last signal: joining now means no thread outlives its job
        self._on_finished(self)
