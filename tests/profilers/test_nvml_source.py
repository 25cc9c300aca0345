"""NVML sources against a fake pynvml replaying scripted call results (see nvml_fake.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from profilers import metrics
from profilers.discovery import SourceSelection, UnavailableSource, default_sources
from profilers.errors import DeviceLostError
from profilers.nvml_library import NvmlLibrary, NvmlUnavailable
from profilers.nvml_reasons import decode_clock_event_reasons
from profilers.nvml_recording import record_nvml_calls
from profilers.nvml_source import (
    POWER_AVERAGED_NOTE,
    POWER_INSTANT_NOTE,
    NvmlGpuSource,
    discover_nvml_sources,
)
from profilers.sampler import TelemetrySampler
from profilers.source import SourceState
from tests.profilers.nvml_fake import ScriptedNvml


def _open_gpu(fake: ScriptedNvml, index: int):
    sources, reasons = discover_nvml_sources(module=fake.module)
    assert reasons == []
    source = sources[index]
    return source, source.open()


def test_no_driver_is_reported_with_its_reason():
    # setup
    fake = ScriptedNvml.from_file(init_error="NVML_ERROR_LIBRARY_NOT_FOUND")
    # execute
    sources, reasons = discover_nvml_sources(module=fake.module)
    # assert
    assert sources == []
    assert len(reasons) == 1 and reasons[0].device == "gpu"
    assert reasons[0].reason.startswith("no NVIDIA driver")


def test_missing_nvidia_ml_py_is_a_reason_not_an_import_error(monkeypatch):
    # setup: a None entry makes `import pynvml` raise ImportError
    monkeypatch.setitem(sys.modules, "pynvml", None)
    # execute / assert
    with pytest.raises(NvmlUnavailable, match="nvidia-ml-py"):
        NvmlLibrary().acquire()
    sources = default_sources(SourceSelection(cpu=False, rapl=False, thermal=False, npu=False))
    assert len(sources) == 1 and isinstance(sources[0], UnavailableSource)
    assert "nvidia-ml-py" in sources[0].open().unavailable[0].reason


def test_fake_module_injected_as_pynvml_gives_one_source_per_gpu(monkeypatch):
    # setup
    fake = ScriptedNvml.from_file()
    monkeypatch.setitem(sys.modules, "pynvml", fake.module)
    # execute
    sources = default_sources(SourceSelection(cpu=False, rapl=False, thermal=False, npu=False))
    # assert
    assert [type(s) for s in sources] == [NvmlGpuSource, NvmlGpuSource]
    assert [s.name for s in sources] == ["nvml:gpu0", "nvml:gpu1"]
    assert fake.init_count == fake.shutdown_count == 1  # discovery does not keep NVML open


def test_hopper_like_gpu_uses_instant_power_and_energy_counter():
    # setup
    fake = ScriptedNvml.from_file()
    # execute
    source, caps = _open_gpu(fake, 0)
    # assert
    specs = {spec.name: spec for spec in caps.metrics}
    assert source.gpu_name == "NVIDIA H100 80GB HBM3"
    assert specs[metrics.POWER].note == POWER_INSTANT_NOTE
    assert specs[metrics.ENERGY].cumulative and specs[metrics.ENERGY].unit == "J"
    assert {u.name: u.reason for u in caps.unavailable}.keys() == {"fan"}
    assert "Not Supported" in caps.unavailable[0].reason
    assert "fan" not in specs
    source.close()


def test_hopper_like_gpu_readings_are_converted_to_si_units():
    # setup
    fake = ScriptedNvml.from_file()
    source, _ = _open_gpu(fake, 0)
    # execute
    reads = [source.read() for _ in range(3)]
    # assert
    first, _, last = reads
    assert first["gpu0/power"] == pytest.approx(612.48)
    assert first["gpu0/energy"] == pytest.approx(5210941.640)
    assert first["gpu0/power_limit"] == 700.0
    assert first["gpu0/memory_used"] == 25190565888.0
    assert first["gpu0/utilisation"] == 98.0 and first["gpu0/memory_utilisation"] == 47.0
    assert last["gpu0/sm_clock"] == 1755.0 and last["gpu0/memory_clock"] == 2619.0
    assert last["gpu0/temperature"] == 86.0 and last["gpu0/temperature_limit"] == 87.0
    assert last["gpu0/energy"] - first["gpu0/energy"] == pytest.approx(131.050)
    assert decode_clock_event_reasons(int(last["gpu0/clock_event_reasons"])) == ["SwPowerCap", "SwThermal"]
    assert fake.calls[(0, "nvmlDeviceGetCurrentClocksThrottleReasons", None)] == 0  # the current name is used
    source.close()


def test_older_gpu_falls_back_to_averaged_power_and_old_reason_call():
    # setup
    fake = ScriptedNvml.from_file()
    # execute
    source, caps = _open_gpu(fake, 1)
    values = source.read()
    # assert
    specs = {spec.name: spec for spec in caps.metrics}
    reasons = {u.name: u.reason for u in caps.unavailable}
    assert specs[metrics.POWER].note == POWER_AVERAGED_NOTE
    assert "1 s" in POWER_AVERAGED_NOTE and "Ampere" in POWER_AVERAGED_NOTE
    assert metrics.ENERGY not in specs and "Not Supported" in reasons[metrics.ENERGY]
    assert metrics.TEMPERATURE_LIMIT in reasons
    assert values["gpu1/power"] == pytest.approx(98.12)
    assert values["gpu1/fan"] == 58.0
    assert decode_clock_event_reasons(int(values["gpu1/clock_event_reasons"])) == ["HwSlowdown"]
    assert fake.calls[(1, "nvmlDeviceGetCurrentClocksThrottleReasons", None)] == 2
    source.close()


def test_gpu_lost_mid_run_raises_device_lost():
    # setup
    fake = ScriptedNvml.from_file()
    source, _ = _open_gpu(fake, 1)
    source.read()
    # execute / assert
    with pytest.raises(DeviceLostError, match=r"GPU 1 \(Quadro P4000\).*GPU is lost"):
        source.read()
    source.close()


def test_sampler_keeps_sampling_the_other_gpu_when_one_is_lost():
    # setup
    fake = ScriptedNvml.from_file()
    sources, _ = discover_nvml_sources(module=fake.module)
    clock = iter(range(0, 10**12, 25_000_000))
    sampler = TelemetrySampler(sources, hz=10, clock=lambda: next(clock))
    sampler.prepare()
    # execute
    for _ in range(3):
        sampler.sample_once()
    snapshot = sampler.snapshot()
    sampler.close()
    # assert
    statuses = snapshot.statuses
    assert statuses["nvml:gpu0"].state is SourceState.ACTIVE
    assert statuses["nvml:gpu1"].state is SourceState.FAILED
    assert "DeviceLostError" in statuses["nvml:gpu1"].error and "Xid" in statuses["nvml:gpu1"].error
    assert len(snapshot.series["gpu0/energy"]) == 3
    assert len(snapshot.series["gpu1/power"]) == 1  # the sample before it was lost stays
    assert any(u.device == "nvml:gpu1" and "source failed" in u.reason for u in snapshot.unavailable)
    assert fake.init_count == fake.shutdown_count  # NVML shut down once every user released it


def test_importing_profilers_does_not_import_pynvml():
    # execute
    code = ("import sys, profilers.discovery, profilers.sampler, profilers.run_summary; "
            "print('pynvml' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # assert
    assert result.stdout.strip() == "False"


def test_recorded_nvml_calls_replay_like_the_original(tmp_path):
    # setup: record from one scripted NVML, replay the recording through a second fake
    path = tmp_path / "recorded.json"
    record_nvml_calls(path, calls=4, interval_s=0, library=NvmlLibrary(ScriptedNvml.from_file().module))
    original, replayed = ScriptedNvml.from_file(), ScriptedNvml(json.loads(path.read_text()))
    # execute
    results = []
    for fake in (original, replayed):
        sources, _ = discover_nvml_sources(module=fake.module)
        for source in sources:
            source.open()
        results.append([sources[0].read(), sources[0].read(), sources[1].read()])
        with pytest.raises(DeviceLostError):
            sources[1].read()
        for source in sources:
            source.close()
    # assert
    assert results[0] == results[1]
    assert json.loads(path.read_text())["gpus"][1]["nvmlDeviceGetCurrentClocksEventReasons"][0] == {
        "nvml_error": "NVML_ERROR_FUNCTION_NOT_FOUND"}
