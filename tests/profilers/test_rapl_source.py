"""RAPL energy counters read from a fake powercap tree in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from profilers import rapl_source
from profilers.errors import SourceReadError
from profilers.rapl_source import PERMISSION_REASON, RaplSource
from profilers.sysfs import SYSFS_ROOT_ENV


def _zone(root: Path, directory: str, name: str, energy_uj: int, max_range_uj: int) -> Path:
    zone = root / "class" / "powercap" / directory
    zone.mkdir(parents=True)
    (zone / "name").write_text(name + "\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
    (zone / "enabled").write_text("1\n")
    return zone


class StepClock:
    """perf_counter_ns stand-in: every call moves 100 ms on."""

    def __init__(self):
        self.now = 0

    def __call__(self) -> int:
        self.now += 100_000_000
        return self.now


def test_package_and_dram_energy_with_wraparound(tmp_path):
    # setup
    package = _zone(tmp_path, "intel-rapl:0", "package-0", 999_000_000, 1_000_000_000)
    dram = _zone(tmp_path, "intel-rapl:0:0", "dram", 10_000, 1_000_000_000)
    source = RaplSource(root=tmp_path, clock=StepClock())
    caps = source.open()
    # execute: the package counter wraps between the first and second read
    (package / "energy_uj").write_text("999_500_000".replace("_", ""))
    (dram / "energy_uj").write_text("510000")
    first = source.read()
    (package / "energy_uj").write_text("1500000")
    (dram / "energy_uj").write_text("1010000")
    second = source.read()
    # assert
    assert {spec.key for spec in caps.metrics} == {"rapl:package-0/energy", "rapl:package-0/power",
                                                   "rapl:package-0:dram/energy", "rapl:package-0:dram/power"}
    assert first["rapl:package-0/energy"] == pytest.approx(0.5)
    assert second["rapl:package-0/energy"] == pytest.approx(0.5 + 0.5 + 1.5)  # 0.5 J to the wrap, 1.5 J after
    assert second["rapl:package-0/power"] == pytest.approx(2.0 / 0.1)
    assert second["rapl:package-0:dram/energy"] == pytest.approx(1.0)
    assert source.wraparounds == {"rapl:package-0": 1, "rapl:package-0:dram": 0}


def test_unreadable_counter_reports_the_udev_reason(tmp_path, monkeypatch):
    # setup: chmod denies a normal user; root reads anyway, so the read itself is made to refuse
    _zone(tmp_path, "intel-rapl:0", "package-0", 5, 1_000_000)
    denied = _zone(tmp_path, "intel-rapl:1", "package-1", 5, 1_000_000) / "energy_uj"
    denied.chmod(0)
    real_read_int = rapl_source.read_int

    def refusing_read_int(path: Path) -> int:
        if Path(path) == denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_read_int(path)

    if os.geteuid() == 0:
        monkeypatch.setattr(rapl_source, "read_int", refusing_read_int)
    # execute
    caps = RaplSource(root=tmp_path).open()
    # assert
    assert [spec.key for spec in caps.metrics] == ["rapl:package-0/energy", "rapl:package-0/power"]
    reasons = {(u.device, u.name): u.reason for u in caps.unavailable}
    assert reasons[("rapl:package-1", "energy")] == PERMISSION_REASON
    assert "udev rule" in PERMISSION_REASON and "README" in PERMISSION_REASON
    denied.chmod(0o644)


def test_missing_max_range_makes_the_zone_unavailable(tmp_path):
    # setup
    zone = _zone(tmp_path, "intel-rapl:0", "package-0", 5, 1_000_000)
    (zone / "max_energy_range_uj").unlink()
    # execute
    caps = RaplSource(root=tmp_path).open()
    # assert
    assert caps.metrics == []
    assert "wraparound cannot be corrected" in caps.unavailable[0].reason


def test_no_powercap_tree_gives_a_reason(tmp_path):
    # execute
    caps = RaplSource(root=tmp_path).open()
    # assert
    assert caps.metrics == []
    assert "no RAPL zones" in caps.unavailable[0].reason and "AUTOGLM_SYSFS_ROOT" in caps.unavailable[0].reason


def test_sysfs_root_comes_from_the_environment(tmp_path, monkeypatch):
    # setup
    _zone(tmp_path, "intel-rapl:0", "package-0", 5, 1_000_000)
    monkeypatch.setenv(SYSFS_ROOT_ENV, str(tmp_path))
    # execute
    caps = RaplSource().open()
    # assert
    assert [spec.device for spec in caps.metrics] == ["rapl:package-0", "rapl:package-0"]


def test_counter_vanishing_mid_run_is_a_read_error(tmp_path):
    # setup
    zone = _zone(tmp_path, "intel-rapl:0", "package-0", 5, 1_000_000)
    source = RaplSource(root=tmp_path)
    source.open()
    (zone / "energy_uj").unlink()
    # execute / assert
    with pytest.raises(SourceReadError, match="energy_uj"):
        source.read()
