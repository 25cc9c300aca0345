"""Long work off the GUI thread: a callable taking (cancel, progress) becomes signals the widgets listen to.

The callable runs on a plain Python thread; the signals are emitted from it and Qt queues them to
the receivers in the GUI thread, so no widget is ever touched from the worker (DESIGN §3).
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

Work = Callable[[threading.Event, Callable[[float, str], None]], Any]


class Job(QObject):
    progressed = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(str, str)  # message, traceback
    finished = Signal()

    def __init__(self, name: str, work: Work, parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self.cancel = threading.Event()
        self._work = work
        self._thread = threading.Thread(target=self._run, name=f"job-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Asks the work to stop; it does within one iteration (the runner checks cancel every loop)."""
        self.cancel.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            result = self._work(self.cancel, self.progressed.emit)
        except Exception as error:  # every failure reaches the user in a dialog, with its traceback
            self.failed.emit(" ".join(str(error).split()) or type(error).__name__, traceback.format_exc())
        else:
            self.succeeded.emit(result)
        finally:
            self.finished.emit()
