"""A stand-in for the `pynvml` module that replays scripted NVML call results.

The error classes and constants are the real ones from nvidia-ml-py (importing pynvml needs no
driver; only nvmlInit does), so the code under test sees exactly the exceptions and codes it would
see on a GPU machine. Calls not in the script fail the test instead of inventing an answer.
"""

from __future__ import annotations

import json
import types
from collections import Counter
from pathlib import Path

import pynvml as real_pynvml

DATA = Path(__file__).parent / "data"
_VALUE_ATTRS = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}


class FakeHandle:
    def __init__(self, index: int):
        self.index = index


def _result(entry):
    """A scripted entry: an NVML error to raise, a struct (dict) to return as attributes, or a plain value."""
    if isinstance(entry, dict) and "nvml_error" in entry:
        raise real_pynvml.NVMLError(getattr(real_pynvml, entry["nvml_error"]))
    if isinstance(entry, dict):
        return types.SimpleNamespace(**entry)
    return entry


class ScriptedNvml:
    """Owns the call counters; `module` is what gets injected in place of pynvml."""

    def __init__(self, script: dict, init_error: str | None = None):
        self.gpus = script["gpus"]
        self.init_error = init_error
        self.calls: Counter = Counter()
        self.init_count = 0
        self.shutdown_count = 0
        self.module = self._build_module()

    @classmethod
    def from_file(cls, name: str = "nvml_two_gpus.json", **kwargs) -> ScriptedNvml:
        return cls(json.loads((DATA / name).read_text()), **kwargs)

    def _replay(self, handle: FakeHandle, function: str, argument=None):
        script = self.gpus[handle.index]
        if function not in script:
            raise AssertionError(f"the NVML script has no results for {function} on GPU {handle.index}")
        entries = script[function]
        call_key = (handle.index, function, argument)
        if argument is not None:
            entries = entries[str(argument)]
        position = min(self.calls[call_key], len(entries) - 1)
        self.calls[call_key] += 1
        return _result(entries[position])

    def _build_module(self) -> types.ModuleType:
        module = types.ModuleType("pynvml")
        for name in dir(real_pynvml):
            if name.startswith(("NVML_", "NVMLError", "nvmlClocks")):
                setattr(module, name, getattr(real_pynvml, name))

        def init():
            if self.init_error:
                raise real_pynvml.NVMLError(getattr(real_pynvml, self.init_error))
            self.init_count += 1

        def shutdown():
            self.shutdown_count += 1

        def handle_by_index(index: int) -> FakeHandle:
            if not 0 <= index < len(self.gpus):
                raise real_pynvml.NVMLError(real_pynvml.NVML_ERROR_INVALID_ARGUMENT)
            return FakeHandle(index)

        def field_values(handle: FakeHandle, field_ids):
            values = []
            for field_id in field_ids:
                entry = self._replay(handle, "nvmlDeviceGetFieldValues", field_id)
                value = types.SimpleNamespace(**{_VALUE_ATTRS[entry.valueType]: entry.value})
                values.append(types.SimpleNamespace(fieldId=field_id, scopeId=0, timestamp=0, latencyUsec=0,
                                                    valueType=entry.valueType, nvmlReturn=entry.nvmlReturn,
                                                    value=value))
            return values

        module.nvmlInit = init
        module.nvmlShutdown = shutdown
        module.nvmlDeviceGetCount = lambda: len(self.gpus)
        module.nvmlDeviceGetHandleByIndex = handle_by_index
        module.nvmlDeviceGetFieldValues = field_values
        for function in ("nvmlDeviceGetName", "nvmlDeviceGetUtilizationRates", "nvmlDeviceGetMemoryInfo",
                         "nvmlDeviceGetPowerUsage", "nvmlDeviceGetTotalEnergyConsumption",
                         "nvmlDeviceGetEnforcedPowerLimit", "nvmlDeviceGetFanSpeed",
                         "nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
            setattr(module, function, lambda handle, _f=function: self._replay(handle, _f))
        for function in ("nvmlDeviceGetClockInfo", "nvmlDeviceGetTemperature", "nvmlDeviceGetTemperatureThreshold"):
            setattr(module, function, lambda handle, kind, _f=function: self._replay(handle, _f, kind))
        return module
