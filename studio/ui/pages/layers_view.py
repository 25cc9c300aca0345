"""A run's per-layer profile: where the time went by op type (bar chart), every node (sortable table), and where
each node really ran, with any fallback off the requested provider said loudly above everything else."""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSplitter,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.profiling.layer_profile import LayerProfile
from studio import usecases
from studio.ui.job_runner import JobRunner
from studio.ui.widgets.forms import button, spin_box
from studio.ui.widgets.plots import titled_plot
from studio.ui.widgets.tables import NumberItem, number_item, read_only_table
from studio.ui.widgets.theme import SERIES_COLOURS, plot_foreground

NODE_COLUMNS = ("node", "op type", "provider", "share", "mean µs", "calls", "MACs/call", "on requested provider")
FALLBACK_COLOUR = SERIES_COLOURS[3]  # red: time spent off the requested provider
BAR_HEIGHT = 0.7


class LayersView(QWidget):
    """Shows the layer profile stored with a run; `show_run(run_id)` is what History's selection connects to."""

    def __init__(self, runner: JobRunner, db_url: str | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.runner = runner
        self.db_url = db_url
        self.profile: LayerProfile | None = None
        self.run_id: int | None = None
        self.run_field = spin_box(1, 2**31 - 1, 1)
        self.run_field.setPrefix("run ")
        self.show_button = button("Show layers", lambda: self.show_run(self.run_field.value()))
        self.heading = QLabel("Pick a run that was profiled (`autoglm-studio profile MODEL`) or one from History.")
        self.heading.setWordWrap(True)
        self.heading.setTextFormat(Qt.TextFormat.PlainText)
        top = QHBoxLayout()
        top.addWidget(self.run_field)
        top.addWidget(self.show_button)
        top.addWidget(self.heading, 1)

        self.placement = QLabel()
        self.placement.setObjectName("placementBanner")
        self.placement.setWordWrap(True)
        self.placement.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bars = titled_plot("Share of node time by op type", "share of node time (%)")
        plot = self.bars.getPlotItem()
        plot.invertY(True)
        plot.setMouseEnabled(False, False)
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.showGrid(x=True, alpha=0.2)
        self.bar_item = pg.BarGraphItem(x0=[], y=[], height=BAR_HEIGHT, width=[])
        plot.addItem(self.bar_item)
        self._bar_labels: list[pg.TextItem] = []
        self.nodes = read_only_table(NODE_COLUMNS)
        self.nodes.setSortingEnabled(True)
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.notes.setStyleSheet("font-size: 8pt;")

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.bars)
        split.addWidget(self.nodes)
        split.setSizes([420, 680])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.placement)
        layout.addWidget(split, 1)
        layout.addWidget(self.notes)
        self._clear()

    def show_run(self, run_id: int) -> None:
        """Loads the run's stored profile off the GUI thread, then shows it."""
        url = self.db_url
        self.run_field.setValue(run_id)
        self.heading.setText(f"Loading the layer profile of run {run_id}…")
        self.runner.start("profile", lambda cancel, progress: usecases.load_run_profile(url, run_id),
                          lambda profile: self.show_profile(profile, run_id),
                          lambda message: self.heading.setText(f"Run {run_id}: {message}"), show_progress=False)

    def show_profile(self, profile: LayerProfile | None, run_id: int | None = None) -> None:
        self.profile, self.run_id = profile, run_id
        if profile is None:
            self._clear()
            self.heading.setText(f"Run {run_id} has no layer profile. `autoglm-studio profile MODEL` times a model, "
                                 f"then profiles it in a separate run stored with the timed one.")
            return
        prefix = "" if run_id is None else f"Run {run_id}: "
        self.heading.setText(f"{prefix}{profile.model} on {profile.requested_provider} "
                             f"({profile.runtime}), batch {profile.batch_size}, {profile.iterations} profiled "
                             f"inferences; node time {profile.node_time_per_inference_us:,.1f} µs per inference")
        self._show_placement(profile)
        self._draw_bars(profile)
        self._fill_nodes(profile)
        notes = list(profile.notes)
        if profile.unattributed_per_inference_us is not None:
            notes.insert(0, f"{profile.unattributed_per_inference_us:,.1f} µs per inference ran outside any node "
                            f"(scheduling, copies)")
        self.notes.setText("<br>".join("note: " + html.escape(note) for note in notes))

    def _clear(self) -> None:
        self.placement.setText("")
        self.placement.setStyleSheet("")
        self.bar_item.setOpts(x0=[], y=[], width=[], height=BAR_HEIGHT)
        for label in self._bar_labels:
            self.bars.removeItem(label)
        self._bar_labels.clear()
        self.nodes.setRowCount(0)
        self.notes.setText("")

    def _show_placement(self, profile: LayerProfile) -> None:
        placement = profile.placement
        shares = ", ".join(f"{provider} {share:.1%}" for provider, share in placement.time_share_by_provider.items())
        if placement.fallback:
            self.placement.setText(f"⚠ <b>{html.escape(placement.message())}</b><br>time by provider: {shares}")
            self.placement.setStyleSheet(f"border: 2px solid {FALLBACK_COLOUR}; padding: 6px; "
                                         f"background: rgba(214, 39, 40, 40);")
        else:
            self.placement.setText(f"Placement: {html.escape(placement.message())} (time by provider: {shares})")
            self.placement.setStyleSheet("padding: 4px;")

    def _draw_bars(self, profile: LayerProfile) -> None:
        for label in self._bar_labels:
            self.bars.removeItem(label)
        self._bar_labels.clear()
        ops = profile.op_types
        shares = np.array([op.share * 100 for op in ops])
        off = [any(p != profile.requested_provider for p in op.providers) for op in ops]
        brushes = [pg.mkBrush(FALLBACK_COLOUR if fell_back else SERIES_COLOURS[0]) for fell_back in off]
        self.bar_item.setOpts(x0=np.zeros(len(ops)), y=np.arange(len(ops)), width=shares, height=BAR_HEIGHT,
                              brushes=brushes, pens=[pg.mkPen(None)] * len(ops))
        plot = self.bars.getPlotItem()
        plot.getAxis("left").setTicks([[(index, op.op_type) for index, op in enumerate(ops)]])
        top = float(shares.max()) if len(ops) else 100.0
        for index, op in enumerate(ops):
            nodes = f"{op.nodes} nodes" if op.nodes > 1 else "1 node"
            inside = op.share * 100 > top * 0.55  # long bars carry their label, short ones have room after them
            label = pg.TextItem(f"{op.share:.1%} · {nodes} · {op.mean_us:,.1f} µs/call ",
                                color="white" if inside else plot_foreground(), anchor=(1 if inside else 0, 0.5))
            label.setPos(op.share * 100, index)
            self.bars.addItem(label)
            self._bar_labels.append(label)
        plot.setXRange(0, top * 1.05, padding=0)
        plot.setYRange(-0.6, max(len(ops) - 0.4, 0.6), padding=0)

    def _fill_nodes(self, profile: LayerProfile) -> None:
        self.nodes.setSortingEnabled(False)
        self.nodes.setRowCount(len(profile.nodes))
        for row, node in enumerate(profile.nodes):
            on_requested = QTableWidgetItem("yes" if not node.off_requested else "NO: fell back")
            if node.off_requested:
                on_requested.setForeground(pg.mkColor(FALLBACK_COLOUR))
            cells = [QTableWidgetItem(node.name), QTableWidgetItem(node.op_type), QTableWidgetItem(node.provider),
                     NumberItem(node.share, f"{node.share:.1%}"), NumberItem(node.mean_us, f"{node.mean_us:,.1f}"),
                     NumberItem(node.calls, str(node.calls)),
                     number_item(node.macs, ","), on_requested]
            for column, cell in enumerate(cells):
                self.nodes.setItem(row, column, cell)
        self.nodes.setSortingEnabled(True)
        self.nodes.sortByColumn(NODE_COLUMNS.index("share"), Qt.SortOrder.DescendingOrder)

    def changeEvent(self, event: QEvent) -> None:
        """Bar labels take the theme's text colour: redraw them when the theme changes."""
        super().changeEvent(event)
        themed = event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange)
        if themed and self.profile is not None:
            self._draw_bars(self.profile)
