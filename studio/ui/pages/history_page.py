"""Saved runs from storage: filter, sort, tag, annotate, delete, open, and pick runs to compare."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from storage import RUN_STATUSES, RunFilter, RunPage
from studio import usecases
from studio.present.numbers import number
from studio.ui.job_runner import JobRunner
from studio.ui.state import AppState, JobState
from studio.ui.widgets.forms import button
from studio.ui.widgets.tables import NumberItem, number_item

COLUMNS = ("id", "started (UTC)", "status", "model", "recipe", "device", "p50 ms", "p99 ms", "items/s", "mJ/inference",
           "tags", "notes")
PAGE_SIZE = 500
RECORDING_JOBS = ("run", "generate", "sweep")  # each leaves a run in the database, even when it fails


class HistoryPage(QWidget):
    open_run = Signal(int)
    compare_runs = Signal(list)
    export_run = Signal(int)
    open_layers = Signal(int)

    def __init__(self, state: AppState, runner: JobRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.runner = runner
        self.model_filter = QLineEdit()
        self.model_filter.setPlaceholderText("model path or sha256 prefix")
        self.tag_filter = QLineEdit()
        self.tag_filter.setPlaceholderText("tag")
        self.status_filter = QComboBox()
        self.status_filter.addItems(["any status", *RUN_STATUSES])
        self.refresh_button = button("Refresh", self.refresh)
        for edit in (self.model_filter, self.tag_filter):
            edit.returnPressed.connect(self.refresh)
        self.status_filter.currentIndexChanged.connect(self.refresh)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Filter:"))
        filters.addWidget(self.model_filter, 2)
        filters.addWidget(self.tag_filter, 1)
        filters.addWidget(self.status_filter)
        filters.addWidget(self.refresh_button)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)  # newest first
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.doubleClicked.connect(lambda _: self._open_selected())
        self.table.itemSelectionChanged.connect(lambda: state.select_runs(self.selected_ids()))
        self.empty = QLabel("No saved runs yet. Runs appear here as soon as they start.")
        self.count = QLabel("")

        button_row = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for text, slot in (("Open", self._open_selected),
                           ("Compare selected", lambda: self.compare_runs.emit(self.selected_ids())),
                           ("Export…", lambda: self.selected_ids() and self.export_run.emit(self.selected_ids()[0])),
                           ("Layers", lambda: self.selected_ids() and self.open_layers.emit(self.selected_ids()[0])),
                           ("Tags…", self._edit_tags), ("Notes…", self._edit_notes), ("Delete…", self._delete_selected)):
            self.buttons[text] = button(text, slot)
            button_row.addWidget(self.buttons[text])
        button_row.addStretch(1)
        button_row.addWidget(self.count)

        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.empty)
        layout.addWidget(self.table, 1)
        layout.addLayout(button_row)
        state.jobs.finished.connect(self._refresh_after)

    def refresh(self) -> None:
        status = self.status_filter.currentText()
        run_filter = RunFilter(model=self.model_filter.text().strip() or None, tag=self.tag_filter.text().strip() or None,
                               status=None if status == "any status" else status)
        url = self.state.db_url
        self.runner.start("history", lambda cancel, progress: usecases.list_runs(url, run_filter, limit=PAGE_SIZE),
                          self.show_page)

    def _refresh_after(self, job: JobState) -> None:
        if job.kind in RECORDING_JOBS:
            self.refresh()

    def show_page(self, page: RunPage) -> None:
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(page.runs))
        for row, run in enumerate(page.runs):
            summary = run.summary or {}
            latency = summary.get("latency_ms", {})
            energy = next((e.joules_per_inference for e in run.energy if e.joules_per_inference is not None), None)
            cells = [
                NumberItem(run.id, str(run.id)),
                QTableWidgetItem(run.started_at.strftime("%Y-%m-%d %H:%M:%S")),
                QTableWidgetItem(run.status),
                QTableWidgetItem(run.model.path.rsplit("/", 1)[-1] if run.model else "?"),
                QTableWidgetItem(run.artifact_path.rsplit("/", 1)[-1] if run.artifact_path else "original"),
                QTableWidgetItem(run.device),
                number_item(latency.get("p50"), ",.3f"),
                number_item(latency.get("p99"), ",.3f"),
                number_item(summary.get("throughput_per_s"), ",.1f"),
                NumberItem(energy, number(None if energy is None else energy * 1e3, ".3f", missing="unavailable")),
                QTableWidgetItem(", ".join(run.tags)),
                QTableWidgetItem(run.notes),
            ]
            if run.model:
                cells[3].setToolTip(run.model.path)
            if run.error:
                cells[2].setToolTip(run.error)
            for column, cell in enumerate(cells):
                self.table.setItem(row, column, cell)
        self.table.setSortingEnabled(True)
        self.empty.setVisible(page.total == 0)
        self.count.setText(f"{len(page.runs)} of {page.total} runs")

    def selected_ids(self) -> list[int]:
        """Oldest first, so the earliest selected run is the comparison's baseline."""
        rows = {index.row() for index in self.table.selectionModel().selectedRows()}
        return sorted(int(self.table.item(row, 0).text()) for row in rows)

    def _open_selected(self) -> None:
        ids = self.selected_ids()
        if ids:
            self.open_run.emit(ids[0])

    def _edit_tags(self) -> None:
        self._edit_text("tags", "Comma-separated tags:",
                        lambda ids, text: self._annotate(ids, tags=[t.strip() for t in text.split(",") if t.strip()]))

    def _edit_notes(self) -> None:
        self._edit_text("notes", "Name or notes for the run:", lambda ids, text: self._annotate(ids, notes=text))

    def _edit_text(self, column: str, prompt: str, apply) -> None:
        """Asks for the selected runs' new tags or notes, starting from the current row's."""
        ids = self.selected_ids()
        if not ids:
            return
        current = self.table.item(self.table.currentRow(), COLUMNS.index(column)).text()
        text, ok = QInputDialog.getText(self, column.capitalize(), prompt, text=current)
        if ok:
            apply(ids, text)

    def _annotate(self, ids: list[int], **changes) -> None:
        url = self.state.db_url

        def work(cancel, progress):
            for run_id in ids:
                usecases.annotate_run(url, run_id, **changes)

        self.runner.start("annotate", work, lambda _: self.refresh())

    def _delete_selected(self) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        answer = QMessageBox.question(self, "Delete runs", f"Delete {len(ids)} run(s) and all their samples? This cannot be undone.")
        if answer != QMessageBox.StandardButton.Yes:
            return
        url = self.state.db_url

        def work(cancel, progress):
            for run_id in ids:
                usecases.delete_run(url, run_id)

        self.runner.start("delete", work, lambda _: self.refresh())
