"""Actions declared once (id, text, shortcut, icon, tip, where they are placed), bound to callbacks by id, then
placed in the menus and the toolbar (napari's app-model actions). Tests trigger them by id, as a user would."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup, QIcon, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QToolBar

from studio.ui.widgets.icons import icon


@dataclass(frozen=True)
class ActionSpec:
    id: str
    text: str
    shortcut: str | QKeySequence.StandardKey | None = None
    icon: str | None = None
    tip: str = ""
    menu: str = ""  # "&File", or "&View/&Theme" for a submenu
    separator_before: bool = False
    exclusive_group: str | None = None  # checkable, one checked per group (the themes)


ACTIONS = (
    ActionSpec("open", "&Open model…", QKeySequence.StandardKey.Open, "open", "Open an ONNX, TorchScript or .pt2 model",
               menu="&File"),
    ActionSpec("export", "&Export…", "Ctrl+E", "export", "Write a deployment bundle of the open model", menu="&File"),
    ActionSpec("data_folder", "Open &data folder", None, None, "Show the folder holding the runs database",
               menu="&File", separator_before=True),
    ActionSpec("quit", "&Quit", QKeySequence.StandardKey.Quit, None, "", menu="&File"),
    ActionSpec("run", "&Run", "Ctrl+R", "run", "Benchmark the model with the current settings", menu="&Run"),
    ActionSpec("stop", "&Stop", "Esc", "stop", "Stop the run; it is saved as cancelled", menu="&Run"),
    ActionSpec("compare", "&Compare selected runs", "Ctrl+K", "compare", "Compare 2–8 runs selected in History",
               menu="&Run"),
    ActionSpec("theme_system", "&System", None, None, "Follow the desktop's light or dark setting",
               menu="&View/&Theme", exclusive_group="theme"),
    ActionSpec("theme_light", "&Light", None, None, "", menu="&View/&Theme", exclusive_group="theme"),
    ActionSpec("theme_dark", "&Dark", None, None, "", menu="&View/&Theme", exclusive_group="theme"),
    ActionSpec("about", "&About", None, None, "Versions of the app and its runtimes", menu="&Help"),
)
TOOLBAR_ORDER = ("open", "run", "stop", "compare", "export")  # the everyday actions, in workflow order


class ActionRegistry:
    def __init__(self, parent: QObject, callbacks: dict[str, Callable[[], None]]):
        missing = {spec.id for spec in ACTIONS} - set(callbacks)
        if missing:
            raise KeyError(f"actions without a callback: {', '.join(sorted(missing))}")
        self._actions: dict[str, QAction] = {}
        self._groups: dict[str, QActionGroup] = {}
        self.menus: dict[str, QMenu] = {}
        for spec in ACTIONS:
            action = QAction(icon(spec.icon) if spec.icon else QIcon(), spec.text, parent)
            action.setObjectName(f"action_{spec.id}")
            if spec.shortcut is not None:
                action.setShortcut(QKeySequence(spec.shortcut))
            tip = spec.tip + (f" ({action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
                              if spec.shortcut is not None else "")
            action.setToolTip(tip)
            action.setStatusTip(spec.tip)
            if spec.exclusive_group is not None:
                action.setCheckable(True)
                self._groups.setdefault(spec.exclusive_group, QActionGroup(parent)).addAction(action)
            action.triggered.connect(lambda _checked=False, callback=callbacks[spec.id]: callback())
            self._actions[spec.id] = action

    def __getitem__(self, action_id: str) -> QAction:
        return self._actions[action_id]

    def place(self, menu_bar: QMenuBar, toolbar: QToolBar) -> None:
        """Menus in the order their first action is declared; the toolbar in TOOLBAR_ORDER."""
        for spec in ACTIONS:
            menu = self._menu(menu_bar, spec.menu)
            if spec.separator_before:
                menu.addSeparator()
            menu.addAction(self._actions[spec.id])
        for action_id in TOOLBAR_ORDER:
            toolbar.addAction(self._actions[action_id])

    def _menu(self, menu_bar: QMenuBar, path: str) -> QMenu:
        if path not in self.menus:
            parent, _, title = path.rpartition("/")
            self.menus[path] = (self._menu(menu_bar, parent) if parent else menu_bar).addMenu(title)
        return self.menus[path]
