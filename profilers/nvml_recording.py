"""Capturing real NVML call results in the format the test suite's fake NVML replays.

On a machine with an NVIDIA GPU, `record_nvml_calls(path, calls=20)` calls every NVML function the
GPU source uses `calls` times per GPU (run a load meanwhile to capture clocks, power and reasons
moving) and writes the results, NVML errors included, as JSON. Copying that file into
tests/profilers/data/ turns hand-written NVML scripts into recorded ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from profilers.nvml_library import NvmlLibrary, is_nvml_error, nvml_error_code
from profilers.nvml_source import FIELD_VALUE_ATTRS

PLAIN_CALLS = ("nvmlDeviceGetName", "nvmlDeviceGetPowerUsage", "nvmlDeviceGetTotalEnergyConsumption",
               "nvmlDeviceGetEnforcedPowerLimit", "nvmlDeviceGetFanSpeed", "nvmlDeviceGetCurrentClocksEventReasons",
               "nvmlDeviceGetCurrentClocksThrottleReasons")


def _error_name(nvml: ModuleType, code: int | None) -> str:
    for name in dir(nvml):
        if name.startswith("NVML_ERROR_") and getattr(nvml, name) == code:
            return name
    return f"NVML_ERROR_{code}"


def _capture(nvml: ModuleType, call: Callable[[], object], convert: Callable[[object], object]) -> object:
    try:
        return convert(call())
    except Exception as error:
        if not is_nvml_error(nvml, error):
            raise
        return {"nvml_error": _error_name(nvml, nvml_error_code(error))}


def _field(value) -> dict:
    number = getattr(value.value, FIELD_VALUE_ATTRS.get(int(value.valueType), "uiVal"))
    return {"nvmlReturn": int(value.nvmlReturn), "valueType": int(value.valueType), "value": number}


def record_nvml_calls(path: Path, calls: int = 20, interval_s: float = 0.1,
                      library: NvmlLibrary | None = None) -> dict:
    """Record `calls` results of each NVML call for every GPU, `interval_s` apart, and write them to `path`."""
    library = library or NvmlLibrary()
    nvml = library.acquire()
    try:
        handles = [nvml.nvmlDeviceGetHandleByIndex(index) for index in range(nvml.nvmlDeviceGetCount())]
        gpus: list[dict] = [{} for _ in handles]
        power_field = getattr(nvml, "NVML_FI_DEV_POWER_INSTANT", 186)
        keyed = {"nvmlDeviceGetClockInfo": (nvml.NVML_CLOCK_SM, nvml.NVML_CLOCK_MEM),
                 "nvmlDeviceGetTemperature": (nvml.NVML_TEMPERATURE_GPU,),
                 "nvmlDeviceGetTemperatureThreshold": (nvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN,)}
        for _ in range(calls):
            for handle, gpu in zip(handles, gpus, strict=True):
                for name in PLAIN_CALLS:
                    function = getattr(nvml, name, None)
                    if function is not None:
                        gpu.setdefault(name, []).append(_capture(nvml, lambda f=function: f(handle), _plain))
                gpu.setdefault("nvmlDeviceGetUtilizationRates", []).append(_capture(
                    nvml, lambda: nvml.nvmlDeviceGetUtilizationRates(handle),
                    lambda r: {"gpu": int(r.gpu), "memory": int(r.memory)}))
                gpu.setdefault("nvmlDeviceGetMemoryInfo", []).append(_capture(
                    nvml, lambda: nvml.nvmlDeviceGetMemoryInfo(handle),
                    lambda m: {"total": int(m.total), "free": int(m.free), "used": int(m.used)}))
                gpu.setdefault("nvmlDeviceGetFieldValues", {}).setdefault(str(power_field), []).append(_capture(
                    nvml, lambda: nvml.nvmlDeviceGetFieldValues(handle, [power_field])[0], _field))
                for name, arguments in keyed.items():
                    for argument in arguments:
                        gpu.setdefault(name, {}).setdefault(str(argument), []).append(_capture(
                            nvml, lambda f=getattr(nvml, name), a=argument: f(handle, a), _plain))
            time.sleep(interval_s)
        driver_version = getattr(nvml, "nvmlSystemGetDriverVersion", None)
        driver = _capture(nvml, driver_version, _plain) if driver_version is not None else "unknown"

    finally:
        library.release()
    recording = {"about": f"Recorded from NVML (driver {driver}) by profilers.nvml_recording, {calls} calls "
                          f"{interval_s:g} s apart.", "gpus": gpus}
    Path(path).write_text(json.dumps(recording, indent=1))
    return recording


def _plain(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode()
    return value if isinstance(value, str | int | float) else str(value)
