"""Where and how to run: detected devices (unusable ones greyed with their reason) and the benchmark settings."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.backends import BackendOptions
from engine.backends.base import GRAPH_OPTIMIZATION_LEVELS
from engine.device.discovery import Device
from engine.measure.runner import BenchmarkSettings
from engine.measure.scenarios import SCENARIOS, ScenarioSettings

KIND_GROUPS = (("cpu", "CPU"), ("gpu", "GPU"), ("npu", "NPU"))
AUTO_BACKEND = "auto (by model format)"


class RunSettingsPage(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._devices: dict[str, Device] = {}

        self.device_tree = QTreeWidget()
        self.device_tree.setHeaderLabels(["device", "runs with / why not"])
        self.device_tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.device_tree.currentItemChanged.connect(self._device_changed)
        devices_box = QGroupBox("Devices")
        QVBoxLayout(devices_box).addWidget(self.device_tree)

        self.backend = QComboBox()
        self.threads = _spin(0, 256, 0, special="runtime default")
        self.batch = _spin(1, 4096, 1)
        self.warmup = _spin(0, 100_000, 10)
        self.iterations = _spin(1, 10_000_000, 100)
        self.duration = QDoubleSpinBox()
        self.duration.setRange(0.0, 3600.0)
        self.duration.setValue(5.0)
        self.duration.setSuffix(" s")
        self.telemetry_hz = _spin(0, 100, 10, special="off")
        self.telemetry_hz.setSuffix(" Hz")
        self.scenario = QComboBox()
        self.scenario.addItem("Timed loop (iterations and duration)", None)
        for name in SCENARIOS:
            self.scenario.addItem(f"LoadGen {name}", name)
        self.rate = QDoubleSpinBox()
        self.rate.setRange(0.1, 1_000_000.0)
        self.rate.setValue(100.0)
        self.rate.setSuffix(" queries/s")
        self.latency_bound = QDoubleSpinBox()
        self.latency_bound.setRange(0.01, 100_000.0)
        self.latency_bound.setValue(20.0)
        self.latency_bound.setSuffix(" ms")
        self.scenario.currentIndexChanged.connect(self._scenario_changed)
        self.graph_level = QComboBox()
        self.graph_level.addItems(GRAPH_OPTIMIZATION_LEVELS)
        self.graph_level.setCurrentText("all")
        form = QFormLayout()
        form.addRow("Backend", self.backend)
        form.addRow("Intra-op threads", self.threads)
        form.addRow("Batch", self.batch)
        form.addRow("Warm-up iterations", self.warmup)
        form.addRow("Minimum iterations", self.iterations)
        form.addRow("Minimum duration", self.duration)
        form.addRow("Telemetry rate", self.telemetry_hz)
        form.addRow("Scenario", self.scenario)
        form.addRow("Server arrival rate", self.rate)
        form.addRow("Server p99 bound", self.latency_bound)
        form.addRow("ORT graph optimization", self.graph_level)
        settings_box = QGroupBox("Run settings")
        settings_box.setLayout(form)

        self._scenario_changed()
        layout = QHBoxLayout(self)
        layout.addWidget(devices_box, 3)
        column = QVBoxLayout()
        column.addWidget(settings_box)
        column.addStretch(1)
        layout.addLayout(column, 2)

    def set_devices(self, devices: list[Device]) -> None:
        self.device_tree.clear()
        self._devices = {d.id: d for d in devices}
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

    @property
    def device_id(self) -> str:
        item = self.device_tree.currentItem()
        value = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None
        return value or "cpu"

    @property
    def backend_name(self) -> str | None:
        text = self.backend.currentText()
        return None if text in ("", AUTO_BACKEND) else text

    def backend_options(self) -> BackendOptions:
        return BackendOptions(threads=self.threads.value() or None, graph_optimization_level=self.graph_level.currentText())

    def benchmark_settings(self) -> BenchmarkSettings:
        return BenchmarkSettings(warmup=self.warmup.value(), min_iterations=self.iterations.value(),
                                 min_duration_s=self.duration.value())

    def scenario_settings(self) -> ScenarioSettings | None:
        """The chosen LoadGen scenario, on the same minimums and warm-up as the plain loop; None for the plain loop."""
        name = self.scenario.currentData()
        if name is None:
            return None
        server = name == "server"
        return ScenarioSettings(scenario=name, min_duration_s=self.duration.value(), min_queries=self.iterations.value(),
                                warmup=self.warmup.value(), target_qps=self.rate.value() if server else None,
                                latency_bound_ms=self.latency_bound.value() if server else None)

    def _scenario_changed(self) -> None:
        server = self.scenario.currentData() == "server"
        self.rate.setEnabled(server)
        self.latency_bound.setEnabled(server)

    def save(self, settings: QSettings) -> None:
        for name in ("threads", "batch", "warmup", "iterations", "telemetry_hz"):
            settings.setValue(f"run/{name}", getattr(self, name).value())
        settings.setValue("run/duration", self.duration.value())
        settings.setValue("run/graph_level", self.graph_level.currentText())

    def restore(self, settings: QSettings) -> None:
        for name in ("threads", "batch", "warmup", "iterations", "telemetry_hz"):
            value = settings.value(f"run/{name}")
            if value is not None:
                getattr(self, name).setValue(int(value))
        if settings.value("run/duration") is not None:
            self.duration.setValue(float(settings.value("run/duration")))
        if settings.value("run/graph_level") in GRAPH_OPTIMIZATION_LEVELS:
            self.graph_level.setCurrentText(settings.value("run/graph_level"))

    def _device_changed(self, current: QTreeWidgetItem | None, _previous) -> None:
        device = self._devices.get(current.data(0, Qt.ItemDataRole.UserRole)) if current is not None else None
        self.backend.clear()
        self.backend.addItem(AUTO_BACKEND)
        if device is not None:
            self.backend.addItems(sorted({r.backend for r in device.runners}))


def _spin(low: int, high: int, value: int, special: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    if special:
        box.setSpecialValueText(special)
    return box
