"""Actions declared once (id, text, shortcut, icon, tip), then placed in menus and the toolbar."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QIcon, QKeySequence

from studio.ui.widgets.icons import icon


@dataclass(frozen=True)
class ActionSpec:
    id: str
    text: str
    shortcut: str | QKeySequence.StandardKey | None = None
    icon: str | None = None
    tip: str = ""


ACTIONS = (
    ActionSpec("open", "&Open model…", QKeySequence.StandardKey.Open, "open", "Open an ONNX, TorchScript or .pt2 model"),
    ActionSpec("run", "&Run", "Ctrl+R", "run", "Benchmark the model with the current settings"),
    ActionSpec("stop", "&Stop", "Esc", "stop", "Stop the run; it is saved as cancelled"),
    ActionSpec("export", "&Export…", "Ctrl+E", "export", "Write a deployment bundle of the open model"),
    ActionSpec("compare", "&Compare selected runs", "Ctrl+K", "compare", "Compare 2–8 runs selected in History"),
    ActionSpec("data_folder", "Open &data folder", None, None, "Show the folder holding the runs database"),
    ActionSpec("about", "&About", None, None, "Versions of the app and its runtimes"),
    ActionSpec("quit", "&Quit", QKeySequence.StandardKey.Quit, None, ""),
)


class ActionRegistry:
    def __init__(self, parent: QObject, callbacks: dict[str, Callable[[], None]]):
        self._actions: dict[str, QAction] = {}
        for spec in ACTIONS:
            action = QAction(icon(spec.icon) if spec.icon else QIcon(), spec.text, parent)
            if spec.shortcut is not None:
                action.setShortcut(QKeySequence(spec.shortcut))
            tip = spec.tip + (f" ({action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
                              if spec.shortcut is not None else "")
            action.setToolTip(tip)
            action.setStatusTip(spec.tip)
            action.triggered.connect(callbacks[spec.id])
            self._actions[spec.id] = action

    def __getitem__(self, action_id: str) -> QAction:
        return self._actions[action_id]
