"""The model card: what the file is, what it takes, and the shapes and inputs a run will use.

It renders the state's open model, and every edit of a shape, seed or inputs file goes straight into the state,
where runs, optimizations and MAC counts read it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.model.dim_roles import DimRole, dynamic_dims
from engine.model.image_samples import CHANNEL_ORDERS
from engine.model.handle import ModelHandle
from engine.model.inputs import DimChoice, choose_dims
from studio.present.numbers import byte_size
from studio.ui.state import (
    AppState,
    InputChoice,
    JobState,
    JobStatus,
    OpenModel,
)
from studio.ui.widgets.forms import button, line_edit, spin_box
from studio.ui.widgets.tables import read_only_table
from studio.ui.widgets.theme import alert_colour


class ModelPage(QWidget):
    open_requested = Signal()

    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self._dim_boxes: dict[str, QSpinBox] = {}
        self._dim_defaults: dict[str, DimChoice] = {}
        self._shape_edits: dict[str, QLineEdit] = {}

        self.title = QLabel("No model open")
        self.title.setObjectName("modelTitle")
        self.title.setStyleSheet("font-size: 16pt; font-weight: 600;")
        open_button = button("Open model…", self.open_requested)
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(open_button)

        self.facts = QFormLayout()
        self.facts.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        facts_box = QGroupBox("Model")
        facts_box.setLayout(self.facts)

        self.io_table = read_only_table(("", "name", "dtype", "shape"))
        io_box = QGroupBox("Inputs and outputs")
        QVBoxLayout(io_box).addWidget(self.io_table)

        self.ops_table = read_only_table(("op type", "nodes"))
        ops_box = QGroupBox("Op mix")
        QVBoxLayout(ops_box).addWidget(self.ops_table)

        self.dims_layout = QGridLayout()
        dims_box = QGroupBox("Shapes for the run")
        dims_box.setLayout(self.dims_layout)

        inputs_box = QGroupBox("Input data")
        self.synthetic = QRadioButton("Synthetic, seed")
        self.from_file = QRadioButton("Real data")
        self.synthetic.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.synthetic)
        group.addButton(self.from_file)
        self.seed = spin_box(0, 2**31 - 1, 0)
        self.data_path = line_edit("", "an .npz whose keys are the input names, a folder of images (resized to the "
                                   "run's shape), or a .txt file with one text a line (needs a tokenizer)")
        self.data_path.setPlaceholderText(".npz, image folder or .txt")
        self.tokenizer = line_edit("", "for a .txt: a tokenizer.json or a Hugging Face folder holding one")
        self.tokenizer.setPlaceholderText("tokenizer.json or a Hugging Face folder")
        self.image_mean = line_edit("0", "subtracted after the divisor: one value, or one per channel (e.g. "
                                    "0.485,0.456,0.406 for ImageNet)")
        self.image_std = line_edit("1", "divided by after the mean: one value, or one per channel (e.g. "
                                   "0.229,0.224,0.225 for ImageNet)")
        self.image_divisor = spin_box(0.001, 1e6, 255.0, tip="pixels (0-255) are divided by this first: 255 gives "
                                      "0-1, 1 keeps 0-255", decimals=3)
        self.channel_order = QComboBox()
        self.channel_order.addItems(CHANNEL_ORDERS)
        self.channel_order.setToolTip("the order of the colour channels the model takes")
        inputs_grid = QGridLayout(inputs_box)
        inputs_grid.addWidget(self.synthetic, 0, 0)
        inputs_grid.addWidget(self.seed, 0, 1, 1, 4)
        inputs_grid.addWidget(self.from_file, 1, 0)
        inputs_grid.addWidget(self.data_path, 1, 1, 1, 2)
        inputs_grid.addWidget(button("File…", self._browse_data_file), 1, 3)
        inputs_grid.addWidget(button("Folder…", self._browse_data_folder), 1, 4)
        inputs_grid.addWidget(QLabel("Tokenizer"), 2, 0)
        inputs_grid.addWidget(self.tokenizer, 2, 1, 1, 3)
        inputs_grid.addWidget(button("Browse…", self._browse_tokenizer), 2, 4)
        inputs_grid.addWidget(QLabel("Image mean / std"), 3, 0)
        inputs_grid.addWidget(self.image_mean, 3, 1)
        inputs_grid.addWidget(self.image_std, 3, 2)
        inputs_grid.addWidget(QLabel("Pixel divisor / order"), 4, 0)
        inputs_grid.addWidget(self.image_divisor, 4, 1)
        inputs_grid.addWidget(self.channel_order, 4, 2)
        inputs_grid.setColumnStretch(1, 1)
        inputs_grid.setColumnStretch(2, 1)

        left = QVBoxLayout()
        left.addWidget(facts_box)
        left.addWidget(dims_box)
        left.addWidget(inputs_box)
        left.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(io_box, 1)
        right.addWidget(ops_box, 1)
        body = QHBoxLayout()
        body.addLayout(left, 1)
        body.addLayout(right, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addLayout(body, 1)
        for changed in (self.seed.valueChanged, self.from_file.toggled, self.data_path.textChanged,
                        self.tokenizer.textChanged, self.image_mean.textChanged, self.image_std.textChanged,
                        self.image_divisor.valueChanged, self.channel_order.currentTextChanged):
            changed.connect(self._publish_inputs)
        state.model_opened.connect(self.show_model)
        state.jobs.finished.connect(self._show_macs)

    def show_model(self, model: OpenModel) -> None:
        handle = model.handle
        self.title.setText(handle.name)
        self.title.setToolTip(str(handle.path))
        while self.facts.rowCount():
            self.facts.removeRow(0)
        sha = QLabel(handle.sha256[:16] + "…")
        sha.setToolTip(handle.sha256)
        sha.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.facts.addRow("Format", QLabel(handle.format.value))
        self.facts.addRow("Size", QLabel(byte_size(handle.size_bytes) + (f" in {len(handle.files)} files" if len(handle.files) > 1 else "")))
        self.facts.addRow("sha256", sha)
        self.facts.addRow("Parameters", QLabel(f"{handle.parameter_count:,}"))
        self.macs = QLabel("counting…")
        self.macs.setWordWrap(True)
        self.facts.addRow("MACs", self.macs)
        for note in handle.notes:
            label = QLabel(note)
            label.setWordWrap(True)
            self.facts.addRow("Note", label)

        rows = [("in", s) for s in handle.inputs] + [("out", s) for s in handle.outputs]
        self.io_table.setRowCount(len(rows))
        for row, (direction, spec) in enumerate(rows):
            for column, text in enumerate((direction, spec.name, spec.dtype, spec.shape_text(brief=True))):
                self.io_table.setItem(row, column, QTableWidgetItem(text))
            formulas = spec.formulas()
            if formulas:
                self.io_table.item(row, 3).setToolTip("\n\n".join(f"{token} = {text}" for token, text in formulas.items()))
        ops = sorted(handle.op_histogram.items(), key=lambda kv: (-kv[1], kv[0]))
        self.ops_table.setRowCount(len(ops))
        for row, (name, count) in enumerate(ops):
            self.ops_table.setItem(row, 0, QTableWidgetItem(name))
            item = QTableWidgetItem()
            item.setData(Qt.ItemDataRole.DisplayRole, count)
            self.ops_table.setItem(row, 1, item)
        self._build_shape_editors(handle, model.inputs)
        self._publish_inputs()  # the seed and inputs file the user set stay with the next model

    def _show_macs(self, job: JobState) -> None:
        if job.kind == "MACs":
            self.macs.setText(job.result if job.status is JobStatus.SUCCEEDED else f"unknown: {job.error}")

    def _publish_inputs(self) -> None:
        if self.state.model is None:
            return
        self.state.choose_inputs(InputChoice(  # only the dims the user changed: the rest keep their recorded origin
            dims={name: box.value() for name, box in self._dim_boxes.items()
                  if box.value() != self._dim_defaults[name].size},
            shapes={name: edit.text() for name, edit in self._shape_edits.items()},
            data=self.data_path.text() if self.from_file.isChecked() else None, seed=self.seed.value(),
            tokenizer=self.tokenizer.text(), image_divisor=self.image_divisor.value(), image_mean=self.image_mean.text(),
            image_std=self.image_std.text(), channel_order=self.channel_order.currentText()))

    def _build_shape_editors(self, handle: ModelHandle, inputs: InputChoice) -> None:
        while self.dims_layout.count():
            self.dims_layout.takeAt(0).widget().deleteLater()
        self._dim_boxes.clear()
        self._shape_edits.clear()
        self._dim_defaults = settable_dim_defaults(handle)
        row = 0
        for dim, choice in self._dim_defaults.items():
            lower, upper = handle.dim_bounds.get(dim, (1, None))
            box = spin_box(max(lower, 1), upper or 1_000_000, choice.size)  # a new model's dims start at their defaults
            box.setObjectName(f"dim_{dim}")
            origin = QLabel()
            origin.setObjectName(f"origin_{dim}")
            origin.setWordWrap(True)
            box.valueChanged.connect(lambda value, dim=dim, origin=origin: self._show_origin(dim, value, origin))
            box.valueChanged.connect(self._publish_inputs)
            self._show_origin(dim, box.value(), origin)
            self.dims_layout.addWidget(QLabel(dim), row, 0)
            self.dims_layout.addWidget(box, row, 1)
            self.dims_layout.addWidget(origin, row, 2)
            self._dim_boxes[dim] = box
            row += 1
        for spec in handle.inputs:
            if spec.shape is None:
                edit = QLineEdit(inputs.shapes[spec.name])
                edit.setPlaceholderText("e.g. 1x3x224x224 (this format records no shapes)")
                edit.textChanged.connect(self._publish_inputs)
                self.dims_layout.addWidget(QLabel(spec.name), row, 0)
                self.dims_layout.addWidget(edit, row, 1, 1, 2)
                self._shape_edits[spec.name] = edit
                row += 1
        if row == 0:
            self.dims_layout.addWidget(QLabel("No other dims to set: the batch size is in Run settings."), 0, 0)

    def _show_origin(self, dim: str, value: int, label: QLabel) -> None:
        """Says where the size comes from; a guessed default is marked until the user sets the dim."""
        choice = self._dim_defaults[dim]
        if value != choice.size:
            label.setText(f"set by you (default {choice.size})")
            label.setStyleSheet("")
        elif choice.guessed:
            label.setText(f"⚠ guessed: {choice.reason}; set it")
            label.setStyleSheet(f"color: {alert_colour('warning')}; font-weight: 600;")
        else:
            label.setText(f"{choice.origin}: {choice.reason}")
            label.setStyleSheet("")
        label.setProperty("guessed", choice.guessed and value == choice.size)

    def _browse_data_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Inputs file", "", "NumPy archives or texts (*.npz *.txt)")
        self._use_data(path)

    def _browse_data_folder(self) -> None:
        self._use_data(QFileDialog.getExistingDirectory(self, "Folder of images"))

    def _use_data(self, path: str) -> None:
        if path:
            self.data_path.setText(path)
            self.from_file.setChecked(True)

    def _browse_tokenizer(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Tokenizer", "", "Tokenizers (tokenizer.json);;All files (*)")
        if path:
            self.tokenizer.setText(path)


def settable_dim_defaults(handle: ModelHandle) -> dict[str, DimChoice]:
    """The dynamic dims a user sizes on the model card, with the size and origin a run would give them; batch dims
    are sized in the run settings."""
    specs = [spec for spec in handle.inputs if spec.shape is not None]
    batch = {key for key, dim in dynamic_dims(specs).items() if dim.role is DimRole.BATCH}
    return {dim: choice for dim, choice in choose_dims(specs, dim_bounds=handle.dim_bounds).items() if dim not in batch}
