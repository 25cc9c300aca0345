"""Form fields built one way on every page: spin boxes, line edits, buttons with their slots, labelled forms."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)


def spin_box(low: float, high: float, value: float, *, suffix: str = "", special: str = "", tip: str = "",
             decimals: int | None = None) -> QSpinBox | QDoubleSpinBox:
    """A QSpinBox for whole numbers, a QDoubleSpinBox when `value` is a float; `special` names the lowest value
    (e.g. "runtime default" for 0 threads)."""
    box = QDoubleSpinBox() if isinstance(value, float) else QSpinBox()
    if decimals is not None:
        box.setDecimals(decimals)
    box.setRange(low, high)
    box.setValue(value)
    box.setSuffix(suffix)
    box.setToolTip(tip)
    if special:
        box.setSpecialValueText(special)
    return box


def line_edit(text: str, tip: str) -> QLineEdit:
    edit = QLineEdit(text)
    edit.setToolTip(tip)
    return edit


def button(text: str, slot: Callable, *, enabled: bool = True) -> QPushButton:
    push = QPushButton(text)
    push.clicked.connect(slot)
    push.setEnabled(enabled)
    return push


def form(rows: Iterable[tuple[str, QWidget | QLayout]]) -> QFormLayout:
    """A labelled form, one (label, field) row after another."""
    layout = QFormLayout()
    for label, field in rows:
        layout.addRow(label, field)
    return layout
