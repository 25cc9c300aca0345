"""Thermal and NPU sources on fake sysfs trees, and the CPU source on this machine."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from profilers import metrics
from profilers.cpu_source import PROCESS_PEAK_RSS, PROCESS_RSS, CpuSource
from profilers.errors import DeviceLostError
from profilers.npu_source import NpuSource
from profilers.sysfs import SYSFS_ROOT_ENV
from profilers.thermal_source import NO_SENSORS_REASON, ThermalSource


def _thermal_zone(root: Path, index: int, kind: str, millidegrees: int) -> Path:
    zone = root / "class" / "thermal" / f"thermal_zone{index}"
    zone.mkdir(parents=True)
    (zone / "type").write_text(kind + "\n")
    (zone / "temp").write_text(f"{millidegrees}\n")
    return zone


def _hwmon(current_package: float, current_core: float) -> dict:
    return {
        "coretemp": [SimpleNamespace(label="Package id 0", current=current_package, high=84.0, critical=100.0),
                     SimpleNamespace(label="Core 0", current=current_core, high=84.0, critical=100.0)],
        "nvme": [SimpleNamespace(label="Composite", current=41.85, high=84.85, critical=84.85)],
    }


def test_thermal_zones_and_hwmon_sensors(tmp_path, monkeypatch):
    # setup: the real /sys is the root (so hwmon is read), thermal zones come from tmp_path
    monkeypatch.delenv(SYSFS_ROOT_ENV, raising=False)
    zone = _thermal_zone(tmp_path, 0, "x86_pkg_temp", 45000)
    readings = iter([_hwmon(50.0, 48.0), _hwmon(71.0, 74.0)])
    source = ThermalSource(root=tmp_path, sensors_temperatures=lambda: next(readings))
    caps = source.open()
    (zone / "temp").write_text("73500\n")
    # execute
    values = source.read()
    # assert
    keys = {spec.key for spec in caps.metrics}
    assert {"thermal/coretemp:Package_id_0", "thermal/coretemp:Core_0", "thermal/nvme:Composite",
            "thermal/thermal_zone0:x86_pkg_temp", "cpu/temperature", "cpu/temperature_limit"} == keys
    assert values["thermal/thermal_zone0:x86_pkg_temp"] == 73.5
    assert values["cpu/temperature"] == 74.0  # the hottest CPU sensor, not the NVMe drive
    assert values["cpu/temperature_limit"] == 84.0


def test_fake_sysfs_root_skips_host_hwmon_with_a_reason(tmp_path, monkeypatch):
    # setup
    monkeypatch.setenv(SYSFS_ROOT_ENV, str(tmp_path))
    _thermal_zone(tmp_path, 3, "acpitz", 27800)
    # execute
    caps = ThermalSource(sensors_temperatures=lambda: pytest.fail("psutil must not be asked")).open()
    # assert
    assert [spec.key for spec in caps.metrics] == ["thermal/thermal_zone3:acpitz"]
    assert "AUTOGLM_SYSFS_ROOT" in caps.unavailable[0].reason


def test_no_sensors_at_all(tmp_path, monkeypatch):
    # setup
    monkeypatch.delenv(SYSFS_ROOT_ENV, raising=False)
    # execute
    caps = ThermalSource(root=tmp_path, sensors_temperatures=dict).open()
    # assert
    assert caps.metrics == []
    assert [u.reason for u in caps.unavailable] == [NO_SENSORS_REASON]


def _npu(root: Path, index: int, busy_us: int | None, frequency: int | None = None) -> Path:
    device = root / "class" / "accel" / f"accel{index}" / "device"
    device.mkdir(parents=True)
    if busy_us is not None:
        (device / "npu_busy_time_us").write_text(f"{busy_us}\n")
    if frequency is not None:
        (device / "npu_current_frequency_mhz").write_text(f"{frequency}\n")
    return device


def test_npu_busy_time_gives_utilisation(tmp_path):
    # setup
    device = _npu(tmp_path, 0, busy_us=1_000_000, frequency=1400)
    _npu(tmp_path, 1, busy_us=None)
    ticks = iter([0, 200_000_000, 400_000_000])
    source = NpuSource(root=tmp_path, clock=lambda: next(ticks))
    caps = source.open()
    # execute
    (device / "npu_busy_time_us").write_text("1150000\n")
    first = source.read()
    (device / "npu_busy_time_us").write_text("1150000\n")
    second = source.read()
    # assert
    assert {spec.key for spec in caps.metrics} == {"npu0/busy_time", "npu0/utilisation", "npu0/clock"}
    assert caps.unavailable[0].device == "npu1" and "npu_busy_time_us" in caps.unavailable[0].reason
    assert first["npu0/utilisation"] == pytest.approx(75.0)  # 150 ms busy in 200 ms
    assert first["npu0/busy_time"] == pytest.approx(0.15)
    assert second["npu0/utilisation"] == 0.0
    assert first["npu0/clock"] == 1400.0


def test_no_npu_and_npu_disappearing(tmp_path):
    # setup
    empty = tmp_path / "empty"
    device = _npu(tmp_path / "tree", 0, busy_us=5)
    source = NpuSource(root=tmp_path / "tree")
    source.open()
    (device / "npu_busy_time_us").unlink()
    # execute / assert
    caps = NpuSource(root=empty).open()
    assert caps.metrics == [] and "no NPU found" in caps.unavailable[0].reason
    with pytest.raises(DeviceLostError, match="npu0"):
        source.read()


def test_cpu_source_reports_process_and_system_metrics():
    # setup
    source = CpuSource()
    caps = source.open()
    # execute
    values = source.read()
    # assert
    keys = {spec.key for spec in caps.metrics}
    assert {f"cpu/{metrics.UTILISATION}", "process/process_cpu", f"process/{PROCESS_RSS}",
            f"memory/{metrics.MEMORY_USED}"} <= keys
    assert set(values) <= keys
    assert all(math.isfinite(value) for value in values.values())
    assert values[f"process/{PROCESS_PEAK_RSS}"] >= values[f"process/{PROCESS_RSS}"] > 0
    for item in caps.unavailable:  # whatever this machine lacks comes with a reason
        assert item.reason
    source.close()


def test_cpu_busy_share_from_cpu_times_deltas():
    # setup: 1 s of wall time on one core: 0.6 s user, 0.1 s iowait (idle), 0.3 s idle; guest is inside user
    from collections import namedtuple

    from profilers.cpu_source import _busy_percent
    Times = namedtuple("Times", "user nice system idle iowait irq softirq steal guest guest_nice")
    before = Times(10.0, 0.0, 2.0, 50.0, 1.0, 0.0, 0.0, 0.0, 3.0, 0.0)
    after = Times(10.6, 0.0, 2.0, 50.3, 1.1, 0.0, 0.0, 0.0, 3.5, 0.0)
    # execute / assert
    assert _busy_percent(before, after) == pytest.approx(60.0)
    assert _busy_percent(before, before) is None
