"""The one way the Qt-free state tells the widgets that something changed (napari's EventEmitter, cut to size).

Plain Python callbacks, called in the order they connected, on the thread that changed the state: the GUI
applies every change on its own thread (job results arrive as queued Qt signals first), so a callback may touch
widgets. An exception in a callback propagates to whoever changed the state; nothing is swallowed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Callback = Callable[..., Any]


class Event:
    def __init__(self) -> None:
        self._callbacks: list[Callback] = []

    def connect(self, callback: Callback) -> Callback:
        self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callback) -> None:
        self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):  # a callback may disconnect itself
            callback(*args)
