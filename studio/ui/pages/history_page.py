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

COLUMNS = ("id", "started (UTC)", "status", "model", "recipe", "device", "p50 ms", "p99 ms", "items/s", "mJ/inference",
           "tags", "notes")
PAGE_SIZE = 500


class _NumberItem(QTableWidgetItem):
    """Sorts by the number it holds, not by its text."""

    def __init__(self, value: float | None, text: str):
        super().__init__(text)
        self.value = float("-inf") if value is None else value

    def __lt__(self, other: QTableWidgetItem) -> bool:
        return self.value < getattr(other, "value", float("-inf"))


class HistoryPage(QWidget):
    run_jobs = Signal(str, object, object)  # name, work(cancel, progress), on_success
    open_run = Signal(int)
    compare_runs = Signal(list)
    export_run = Signal(int)
    open_layers = Signal(int)

    def __init__(self, db_url: str | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.db_url = db_url
        self.model_filter = QLineEdit()
        self.model_filter.setPlaceholderText("model path or sha256 prefix")
        self.tag_filter = QLineEdit()
        self.tag_filter.setPlaceholderText("tag")
        self.status_filter = QComboBox()
        self.status_filter.addItems(["any status", *RUN_STATUSES])
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        for edit in (self.model_filter, self.tag_filter):
            edit.returnPressed.connect(self.refresh)
        self.status_filter.currentIndexChanged.connect(self.refresh)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Filter:"))
        filters.addWidget(self.model_filter, 2)
        filters.addWidget(self.tag_filter, 1)
        filters.addWidget(self.status_filter)
        filters.addWidget(refresh)

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
        self.empty = QLabel("No saved runs yet. Runs appear here as soon as they start.")
        self.count = QLabel("")

        buttons = QHBoxLayout()
        for text, slot in (("Open", self._open_selected), ("Compare selected", self._compare_selected),
                           ("Export…", lambda: self.selected_ids() and self.export_run.emit(self.selected_ids()[0])),
                           ("Layers", lambda: self.selected_ids() and self.open_layers.emit(self.selected_ids()[0])),
                           ("Tags…", self._edit_tags), ("Notes…", self._edit_notes), ("Delete…", self._delete_selected)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.count)

        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.empty)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

    def refresh(self) -> None:
        status = self.status_filter.currentText()
        run_filter = RunFilter(model=self.model_filter.text().strip() or None, tag=self.tag_filter.text().strip() or None,
                               status=None if status == "any status" else status)
        url = self.db_url
        self.run_jobs.emit("history", lambda cancel, progress: usecases.list_runs(url, run_filter, limit=PAGE_SIZE), self.show_page)

    def show_page(self, page: RunPage) -> None:
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(page.runs))
        for row, run in enumerate(page.runs):
            summary = run.summary or {}
            latency = summary.get("latency_ms", {})
            energy = next((e.joules_per_inference for e in run.energy if e.joules_per_inference is not None), None)
            cells = [
                _NumberItem(run.id, str(run.id)),
                QTableWidgetItem(run.started_at.strftime("%Y-%m-%d %H:%M:%S")),
                QTableWidgetItem(run.status),
                QTableWidgetItem(run.model.path.rsplit("/", 1)[-1] if run.model else "?"),
                QTableWidgetItem(run.artifact_path.rsplit("/", 1)[-1] if run.artifact_path else "original"),
                QTableWidgetItem(run.device),
                _NumberItem(latency.get("p50"), _number(latency.get("p50"), 3)),
                _NumberItem(latency.get("p99"), _number(latency.get("p99"), 3)),
                _NumberItem(summary.get("throughput_per_s"), _number(summary.get("throughput_per_s"), 1)),
                _NumberItem(energy, "unavailable" if energy is None else f"{energy * 1e3:.3f}"),
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

    def _compare_selected(self) -> None:
        ids = self.selected_ids()
        if not 2 <= len(ids) <= 8:
            QMessageBox.information(self, "Compare runs", "Select 2 to 8 runs (Ctrl+click) to compare them.")
            return
        self.compare_runs.emit(ids)

    def _edit_tags(self) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        current = self.table.item(self.table.currentRow(), COLUMNS.index("tags")).text()
        text, ok = QInputDialog.getText(self, "Tags", "Comma-separated tags:", text=current)
        if ok:
            tags = [t.strip() for t in text.split(",") if t.strip()]
            self._annotate(ids, tags=tags)

    def _edit_notes(self) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        current = self.table.item(self.table.currentRow(), COLUMNS.index("notes")).text()
        text, ok = QInputDialog.getText(self, "Notes", "Name or notes for the run:", text=current)
        if ok:
            self._annotate(ids, notes=text)

    def _annotate(self, ids: list[int], **changes) -> None:
        url = self.db_url

        def work(cancel, progress):
            for run_id in ids:
                usecases.annotate_run(url, run_id, **changes)

        self.run_jobs.emit("annotate", work, lambda _: self.refresh())

    def _delete_selected(self) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        answer = QMessageBox.question(self, "Delete runs", f"Delete {len(ids)} run(s) and all their samples? This cannot be undone.")
        if answer != QMessageBox.StandardButton.Yes:
            return
        url = self.db_url

        def work(cancel, progress):
            for run_id in ids:
                usecases.delete_run(url, run_id)

        self.run_jobs.emit("delete", work, lambda _: self.refresh())


def _number(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"
