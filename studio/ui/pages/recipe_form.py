"""The recipe as a form, made from the knobs' own declarations: a group per recipe section, a field per knob.

A knob declared on a pass's config (engine.optimize.params) appears here with no edit to this file: its kind
picks the field, its help is the tooltip, its range bounds the spin box, and it is enabled only while the pass
its section's selector picks reads it. The form's values go through the recipe's own validation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QVBoxLayout,
    QWidget,
)

from engine.optimize.recipe import RECIPE_SECTIONS, Knob, Recipe, SectionForm
from studio.ui.widgets.forms import line_edit, spin_box

LARGEST_SPIN = 2**31 - 1  # QSpinBox holds a C int
UNBOUNDED = 1e9  # where a number has no upper bound, a spin box still needs one


@dataclass
class _Field:
    knob: Knob
    editor: QWidget  # what the user edits: a combo box, check box, spin box or line edit
    row: QWidget  # what is greyed out when the selected pass does not read the knob
    read: Callable[[], Any]  # the value as the recipe's JSON holds it


class RecipeForm(QWidget):
    changed = Signal()

    def __init__(self, sections: Sequence[SectionForm] = RECIPE_SECTIONS, parent: QWidget | None = None):
        super().__init__(parent)
        self._sections = tuple(sections)
        self._fields: dict[tuple[str, str], _Field] = {}
        self._rows: dict[str, QFormLayout] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for section in self._sections:
            rows = QFormLayout()
            for knob in section.all_knobs:
                field = _field(knob, section, self._changed)
                self._fields[(section.name, knob.name)] = field
                rows.addRow("" if knob.param.kind == "boolean" else _label(knob), field.row)
            self._rows[section.name] = rows
            box = QGroupBox(section.title)
            box.setLayout(rows)
            layout.addWidget(box)
        self._changed()

    def selector(self, section: str) -> QComboBox:
        """The combo box that picks which pass of `section` runs."""
        form = next(form for form in self._sections if form.name == section)
        return self._fields[(section, form.selector.name)].editor

    def editor(self, section: str, name: str) -> QWidget:
        """The field of one knob; `section` is "" for the recipe's own knobs."""
        return self._fields[(section, name)].editor

    def recipe(self) -> Recipe:
        """The recipe the form holds; raises RecipeError (one line) for a value the recipe rejects."""
        data: dict[str, Any] = {}
        for (section, name), field in self._fields.items():
            (data.setdefault(section, {}) if section else data)[name] = field.read()
        return Recipe.from_dict(data)

    def chosen_options(self) -> list[str]:
        """The option keys (see engine.optimize.plan.option_applicability) of the passes the selectors pick."""
        chosen = [form.options.get(self.selector(form.name).currentData()) for form in self._sections if form.selector]
        return list(dict.fromkeys(key for key in chosen if key))

    def set_options(self, options: dict) -> None:
        """Greys out passes that cannot apply to this model and device, with the reason as the tooltip."""
        for form in self._sections:
            if form.selector is None:
                continue
            combo = self.selector(form.name)
            reasons = []
            for index in range(combo.count()):
                option = options.get(form.options.get(combo.itemData(index)))
                usable = option is None or option.available
                combo.model().item(index).setEnabled(usable)
                combo.model().item(index).setToolTip("" if usable else option.reason)
                if not usable:
                    reasons.append(option.reason)
            if not combo.model().item(combo.currentIndex()).isEnabled():
                combo.setCurrentIndex(0)
            offered = any(combo.model().item(index).isEnabled() for index in range(1, combo.count()))
            combo.setEnabled(offered)
            combo.setToolTip(form.selector.param.help if offered else "; ".join(dict.fromkeys(reasons)))
        self._changed()

    def _changed(self, *_) -> None:
        for (section, _name), field in self._fields.items():
            if field.knob.read_when:
                # A knob the chosen pass does not read is disabled and folded away, so the chosen ones stay in view.
                read = self.selector(section).currentData() in field.knob.read_when
                field.row.setEnabled(read)
                self._rows[section].setRowVisible(field.row, read)
        self.changed.emit()


def _label(knob: Knob) -> str:
    return knob.name.replace("_", " ").capitalize()


def _tip(knob: Knob) -> str:
    param = knob.param
    bounded = param.low is not None or param.high is not None
    return param.help + (f" ({param.bounds_text(knob.name)})" if bounded else "")


def _field(knob: Knob, section: SectionForm, changed: Callable) -> _Field:
    param = knob.param
    if param.kind == "choice":
        combo = QComboBox()
        labels = section.labels if knob is section.selector else {}
        for value in param.choices:
            combo.addItem(labels.get(value, value), value)
        combo.setCurrentIndex(combo.findData(knob.default))
        combo.setToolTip(param.help)
        combo.currentIndexChanged.connect(changed)
        return _Field(knob, combo, combo, combo.currentData)
    if param.kind == "boolean":
        check = QCheckBox(_label(knob))
        check.setChecked(knob.default)
        check.setToolTip(param.help)
        check.toggled.connect(changed)
        return _Field(knob, check, check, check.isChecked)
    if param.kind in ("number", "integer"):
        return _number_field(knob, changed)
    edit = line_edit(", ".join(knob.default or ()) if param.kind == "names" else (knob.default or ""), _tip(knob))
    edit.setPlaceholderText(param.placeholder)
    edit.textChanged.connect(changed)
    if param.kind == "names":
        def read() -> list[str] | None:
            names = [name.strip() for name in edit.text().split(",") if name.strip()]
            return None if param.optional and not names else names
        return _Field(knob, edit, edit, read)
    return _Field(knob, edit, edit, lambda: edit.text().strip() or None)


def _number_field(knob: Knob, changed: Callable) -> _Field:
    """A spin box within the knob's range (an open bound is stepped past); an optional number gets a switch."""
    param = knob.param
    whole = param.kind == "integer"
    decimals = 0 if whole else (4 if param.low is not None and param.high is not None
                                and param.high - param.low <= 2 else 3)
    tick = 1 if whole else 10.0 ** -decimals
    low = -UNBOUNDED if param.low is None else param.low + (tick if param.low_open else 0)
    high = (LARGEST_SPIN if whole else UNBOUNDED) if param.high is None else param.high - (tick if param.high_open else 0)
    if whole:
        low, high = int(low), int(min(high, LARGEST_SPIN))
    start = next(value for value in (knob.default, param.example, low) if value is not None)
    box = spin_box(low, high, int(start) if whole else float(start), tip=_tip(knob), decimals=None if whole else decimals)
    box.setSingleStep(1 if whole else tick * 100)
    box.valueChanged.connect(changed)
    if not param.optional:
        return _Field(knob, box, box, box.value)
    switch = QCheckBox()
    switch.setToolTip(f"set {_label(knob).lower()}; unchecked: none")
    switch.setChecked(knob.default is not None)
    box.setEnabled(switch.isChecked())
    switch.toggled.connect(box.setEnabled)
    switch.toggled.connect(changed)
    row = QWidget()
    line = QHBoxLayout(row)
    line.setContentsMargins(0, 0, 0, 0)
    line.addWidget(switch)
    line.addWidget(box, 1)
    return _Field(knob, box, row, lambda: box.value() if switch.isChecked() else None)
