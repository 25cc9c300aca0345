"""Where and how to run: detected devices (unusable ones greyed with their reason) and the benchmark settings.

The page renders the state's devices and run settings; every edit goes into the state at once.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.backends.base import GRAPH_OPTIMIZATION_LEVELS
from engine.device.discovery import Device
from engine.measure.scenarios import SCENARIOS
from studio.ui.state import AppState, RunSettings
from studio.ui.widgets.forms import form, spin_box

KIND_GROUPS = (("cpu", "CPU"), ("gpu", "GPU"), ("npu", "NPU"))
AUTO_BACKEND = "auto (by model format)"


class RunSettingsPage(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.device_tree = QTreeWidget()
        self.device_tree.setHeaderLabels(["device", "runs with / why not"])
        self.device_tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        devices_box = QGroupBox("Devices")
        QVBoxLayout(devices_box).addWidget(self.device_tree)

        defaults = RunSettings()
        self.backend = QComboBox()
        self.backend.addItem(AUTO_BACKEND)
        self.threads = spin_box(0, 256, defaults.threads, special="runtime default")
        self.batch = spin_box(1, 4096, defaults.batch)
        self.warmup = spin_box(0, 100_000, defaults.warmup)
        self.iterations = spin_box(1, 10_000_000, defaults.iterations)
        self.duration = spin_box(0.0, 3600.0, defaults.duration_s, suffix=" s")
        self.telemetry_hz = spin_box(0, 100, defaults.telemetry_hz, suffix=" Hz", special="off")
        self.scenario = QComboBox()
        self.scenario.addItem("Timed loop (iterations and duration)", None)
        for name in SCENARIOS:
            self.scenario.addItem(f"LoadGen {name}", name)
        self.rate = spin_box(0.1, 1_000_000.0, defaults.rate_qps, suffix=" queries/s")
        self.latency_bound = spin_box(0.01, 100_000.0, defaults.latency_bound_ms, suffix=" ms")
        self.graph_level = QComboBox()
        self.graph_level.addItems(GRAPH_OPTIMIZATION_LEVELS)
        self.graph_level.setCurrentText(defaults.graph_level)
        settings_box = QGroupBox("Run settings")
        settings_box.setLayout(form((
            ("Backend", self.backend), ("Intra-op threads", self.threads), ("Batch", self.batch),
            ("Warm-up iterations", self.warmup), ("Minimum iterations", self.iterations),
            ("Minimum duration", self.duration), ("Telemetry rate", self.telemetry_hz), ("Scenario", self.scenario),
            ("Server arrival rate", self.rate), ("Server p99 bound", self.latency_bound),
            ("ORT graph optimization", self.graph_level))))
        layout = QHBoxLayout(self)
        layout.addWidget(devices_box, 3)
        column = QVBoxLayout()
        column.addWidget(settings_box)
        column.addStretch(1)
        layout.addLayout(column, 2)

        for box, name in ((self.threads, "threads"), (self.batch, "batch"), (self.warmup, "warmup"),
                          (self.iterations, "iterations"), (self.duration, "duration_s"),
                          (self.telemetry_hz, "telemetry_hz"), (self.rate, "rate_qps"),
                          (self.latency_bound, "latency_bound_ms")):
            box.valueChanged.connect(lambda value, name=name: state.update_run_settings(**{name: value}))
        self.scenario.currentIndexChanged.connect(
            lambda _: state.update_run_settings(scenario=self.scenario.currentData()))
        self.graph_level.currentTextChanged.connect(lambda text: state.update_run_settings(graph_level=text))
        self.backend.currentTextChanged.connect(
            lambda text: state.update_run_settings(backend=None if text in ("", AUTO_BACKEND) else text))
        self.device_tree.currentItemChanged.connect(self._device_chosen)
        state.devices_changed.connect(self.show_devices)
        state.run_settings_changed.connect(self.show_settings)
        self.show_settings(state.run_settings)

    def show_settings(self, settings: RunSettings) -> None:
        """Shows settings changed elsewhere (restored from the last session); unchanged fields stay quiet."""
        for box, value in ((self.threads, settings.threads), (self.batch, settings.batch),
                           (self.warmup, settings.warmup), (self.iterations, settings.iterations),
                           (self.duration, settings.duration_s), (self.telemetry_hz, settings.telemetry_hz),
                           (self.rate, settings.rate_qps), (self.latency_bound, settings.latency_bound_ms)):
            box.setValue(value)
        self.scenario.setCurrentIndex(0 if settings.scenario is None else self.scenario.findData(settings.scenario))
        self.graph_level.setCurrentText(settings.graph_level)
        server = settings.scenario == "server"
        self.rate.setEnabled(server)
        self.latency_bound.setEnabled(server)

    def show_devices(self, devices: list[Device]) -> None:
        self.device_tree.clear()
        first_usable = None
        for kind, title in KIND_GROUPS:
            group = QTreeWidgetItem([title])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.device_tree.addTopLevelItem(group)
            for device in (d for d in devices if d.kind == kind):
                runs_with = ", ".join(f"{r.backend}: {r.provider}" for r in device.runners)
                item = QTreeWidgetItem([f"{device.name} ({device.id})", runs_with if device.available else device.reason])
                item.setData(0, Qt.ItemDataRole.UserRole, device.id)
                item.setToolTip(0, device.reason or runs_with)
                item.setToolTip(1, device.reason or runs_with)
                if not device.available:
                    item.setFlags(Qt.ItemFlag.NoItemFlags)  # greyed out, not selectable; the reason stays readable
                group.addChild(item)
                if device.available and first_usable is None:
                    first_usable = item
            group.setExpanded(True)
        if first_usable is not None:
            self.device_tree.setCurrentItem(first_usable)

    def _device_chosen(self, current: QTreeWidgetItem | None, _previous) -> None:
        device_id = current.data(0, Qt.ItemDataRole.UserRole) if current is not None else None
        device = next((d for d in self.state.devices if d.id == device_id), None)
        self.backend.blockSignals(True)  # the list changes under the choice: the state hears the result once
        self.backend.clear()
        self.backend.addItem(AUTO_BACKEND)
        if device is not None:
            self.backend.addItems(sorted({r.backend for r in device.runners}))
        self.backend.blockSignals(False)
        self.state.update_run_settings(device=device_id or "cpu", backend=None)
