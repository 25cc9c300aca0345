"""NVIDIA GPU telemetry through NVML: one source per GPU so a lost GPU never stops the others.

Power is read from the `NVML_FI_DEV_POWER_INSTANT` field where the driver has it, because
`nvmlDeviceGetPowerUsage` is averaged over one second on Ampere and newer (except GA100) and
would smear short runs; the spec note says which one was used. Energy comes from
`nvmlDeviceGetTotalEnergyConsumption` (mJ since driver load, Volta+), which the run summary
prefers over integrating power. Every metric is probed once at `open`; what NVML refuses becomes
an `UnavailableMetric` with NVML's reason instead of a zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from profilers import metrics
from profilers.errors import DeviceLostError
from profilers.metrics import (
    MetricKind,
    MetricSpec,
    SourceCapabilities,
    UnavailableMetric,
)
from profilers.nvml_library import (
    DEVICE_LOST_CODES,
    ERROR_FUNCTION_NOT_FOUND,
    NVML_SUCCESS,
    NvmlLibrary,
    NvmlUnavailable,
    describe_nvml_error,
    is_nvml_error,
    nvml_error_code,
)
from profilers.source import TelemetrySource

MEMORY_UTILISATION = "memory_utilisation"
FAN = "fan"
POWER_AVERAGED_NOTE = ("nvmlDeviceGetPowerUsage: averaged over 1 s on Ampere and newer (except GA100), "
                       "instantaneous on older GPUs; the instant-power field is not available here")
POWER_INSTANT_NOTE = "NVML_FI_DEV_POWER_INSTANT field (instantaneous board power)"

FIELD_VALUE_ATTRS = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}


@dataclass
class _Reader:
    """A group of metrics read by one NVML call (utilisation gives GPU and memory utilisation)."""

    specs: list[MetricSpec]
    read: Callable[[], dict[str, float]]
    what: str
    unavailable: str = ""  # set when probing already showed NVML will not give these metrics


def _field_number(value) -> float:
    return float(getattr(value.value, FIELD_VALUE_ATTRS.get(int(value.valueType), "uiVal")))


def discover_nvml_sources(library: NvmlLibrary | None = None,
                          module: ModuleType | None = None) -> tuple[list[NvmlGpuSource], list[UnavailableMetric]]:
    """One unopened source per visible GPU, or the reason there is none."""
    library = library or NvmlLibrary(module)
    try:
        nvml = library.acquire()
    except NvmlUnavailable as error:
        return [], [UnavailableMetric("*", "gpu", str(error))]
    try:
        count = int(nvml.nvmlDeviceGetCount())
    except Exception as error:
        if not is_nvml_error(nvml, error):
            raise
        return [], [UnavailableMetric("*", "gpu", f"NVML could not count the GPUs: {error}")]
    finally:
        library.release()
    if count == 0:
        return [], [UnavailableMetric("*", "gpu", "the NVIDIA driver is loaded but reports no GPU (check nvidia-smi)")]
    return [NvmlGpuSource(index, library) for index in range(count)], []


class NvmlGpuSource(TelemetrySource):
    """Utilisation, memory, clocks, power, energy, temperature, limits, fan and clock event reasons of one GPU."""

    def __init__(self, index: int, library: NvmlLibrary):
        self.index = index
        self.device = f"gpu{index}"
        self.name = f"nvml:{self.device}"
        self.gpu_name = ""
        self._library = library
        self._nvml: ModuleType | None = None
        self._handle = None
        self._readers: list[_Reader] = []
        self.skipped_reads: dict[str, str] = {}  # reader -> last transient NVML error, for diagnostics

    # -- open ---------------------------------------------------------------------------------------------
    def open(self) -> SourceCapabilities:
        caps = SourceCapabilities(self.name)
        try:
            self._nvml = self._library.acquire()
        except NvmlUnavailable as error:
            caps.unavailable.append(UnavailableMetric("*", self.device, str(error)))
            return caps
        nvml = self._nvml
        try:
            self._handle = nvml.nvmlDeviceGetHandleByIndex(self.index)
            self.gpu_name = str(nvml.nvmlDeviceGetName(self._handle))
        except Exception as error:
            if not is_nvml_error(nvml, error):
                raise
            reason = describe_nvml_error(error, f"GPU {self.index}")
            caps.unavailable.append(UnavailableMetric("*", self.device, reason))
            self.close()
            return caps
        for reader in self._candidate_readers():
            if reader.unavailable:
                caps.unavailable.extend(UnavailableMetric(s.name, s.device, reader.unavailable) for s in reader.specs)
                continue
            try:
                reader.read()
            except Exception as error:
                if not is_nvml_error(nvml, error):
                    raise
                reason = describe_nvml_error(error, f"{reader.what} on GPU {self.index} ({self.gpu_name})")
                caps.unavailable.extend(UnavailableMetric(s.name, s.device, reason) for s in reader.specs)
                continue
            self._readers.append(reader)
            caps.metrics.extend(reader.specs)
        return caps

    def _spec(self, name: str, unit: str, *, cumulative: bool = False, note: str = "") -> MetricSpec:
        return MetricSpec(name, unit, self.device, MetricKind.MEASURED, cumulative=cumulative, note=note)

    def _key(self, name: str) -> str:
        return f"{self.device}/{name}"

    def _candidate_readers(self) -> list[_Reader]:
        nvml, handle = self._nvml, self._handle
        key = self._key

        def utilisation() -> dict[str, float]:
            rates = nvml.nvmlDeviceGetUtilizationRates(handle)
            return {key(metrics.UTILISATION): float(rates.gpu), key(MEMORY_UTILISATION): float(rates.memory)}

        def memory() -> dict[str, float]:
            info = nvml.nvmlDeviceGetMemoryInfo(handle)
            return {key(metrics.MEMORY_USED): float(info.used), key(metrics.MEMORY_TOTAL): float(info.total)}

        readers = [
            _Reader([self._spec(metrics.UTILISATION, "%"), self._spec(MEMORY_UTILISATION, "%")], utilisation,
                    "utilisation"),
            _Reader([self._spec(metrics.MEMORY_USED, "B"), self._spec(metrics.MEMORY_TOTAL, "B")], memory,
                    "memory usage"),
            self._single(metrics.SM_CLOCK, "MHz", "SM clock",
                         lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)),
            self._single(metrics.MEMORY_CLOCK, "MHz", "memory clock",
                         lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM)),
            self._power_reader(),
            self._single(metrics.ENERGY, "J", "total energy counter",
                         lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0, cumulative=True,
                         note="nvmlDeviceGetTotalEnergyConsumption, joules since the driver loaded; "
                              "updates every 20-100 ms"),
            self._single(metrics.TEMPERATURE, "degC", "GPU temperature",
                         lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)),
            self._temperature_limit_reader(),
            self._single(metrics.POWER_LIMIT, "W", "enforced power limit",
                         lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0),
            self._single(FAN, "%", "fan speed", lambda: nvml.nvmlDeviceGetFanSpeed(handle)),
            self._single(metrics.CLOCK_EVENT_REASONS, "bitmask", "clock event reasons", self._clock_event_reasons,
                         note="NVML clock event (throttle) reasons; decode with profilers.nvml_reasons"),
        ]
        return readers

    def _single(self, name: str, unit: str, what: str, call: Callable[[], float], *, cumulative: bool = False,
                note: str = "") -> _Reader:
        metric_key = self._key(name)
        return _Reader([self._spec(name, unit, cumulative=cumulative, note=note)],
                       lambda: {metric_key: float(call())}, what)

    def _power_reader(self) -> _Reader:
        nvml, handle = self._nvml, self._handle
        field_id = getattr(nvml, "NVML_FI_DEV_POWER_INSTANT", None)
        if field_id is not None:
            try:
                value = nvml.nvmlDeviceGetFieldValues(handle, [field_id])[0]
                instant_supported = int(value.nvmlReturn) == NVML_SUCCESS
            except Exception as error:
                if not is_nvml_error(nvml, error):
                    raise
                instant_supported = False
            if instant_supported:
                def instant() -> float:
                    field = nvml.nvmlDeviceGetFieldValues(handle, [field_id])[0]
                    if int(field.nvmlReturn) != NVML_SUCCESS:
                        raise nvml.NVMLError(int(field.nvmlReturn))
                    return _field_number(field) / 1000.0
                return self._single(metrics.POWER, "W", "instant power", instant, note=POWER_INSTANT_NOTE)
        return self._single(metrics.POWER, "W", "power usage",
                            lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0, note=POWER_AVERAGED_NOTE)

    def _temperature_limit_reader(self) -> _Reader:
        """The slowdown threshold is fixed per board: read it once here, then report it with every sample."""
        nvml, handle = self._nvml, self._handle
        spec = self._spec(metrics.TEMPERATURE_LIMIT, "degC", note="NVML slowdown temperature threshold, read once")
        try:
            limit = float(nvml.nvmlDeviceGetTemperatureThreshold(handle, nvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN))
        except Exception as error:
            if not is_nvml_error(nvml, error):
                raise
            reason = describe_nvml_error(error, f"slowdown temperature threshold on GPU {self.index} ({self.gpu_name})")
            return _Reader([spec], dict, "slowdown temperature", unavailable=reason)
        metric_key = self._key(metrics.TEMPERATURE_LIMIT)
        return _Reader([spec], lambda: {metric_key: limit}, "slowdown temperature")

    def _clock_event_reasons(self) -> float:
        """`nvmlDeviceGetCurrentClocksEventReasons` (driver 535+), else the older ThrottleReasons name."""
        nvml, handle = self._nvml, self._handle
        current = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
        if current is not None:
            try:
                return float(current(handle))
            except Exception as error:
                if nvml_error_code(error) != ERROR_FUNCTION_NOT_FOUND:  # an older driver: try the old name
                    raise
        return float(nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle))

    # -- read -----------------------------------------------------------------------------------------------
    def read(self) -> dict[str, float]:
        nvml = self._nvml
        values: dict[str, float] = {}
        for reader in self._readers:
            try:
                values.update(reader.read())
            except Exception as error:
                if not is_nvml_error(nvml, error):
                    raise
                if nvml_error_code(error) in DEVICE_LOST_CODES:
                    raise DeviceLostError(
                        f"GPU {self.index} ({self.gpu_name}) stopped answering mid-run (NVML: {error}); its telemetry "
                        f"ends here. Check nvidia-smi and the kernel log (dmesg) for Xid errors.") from error
                # A transient refusal (timeout, busy): this sample simply has no value for these metrics.
                self.skipped_reads[reader.what] = str(error)
        return values

    def close(self) -> None:
        if self._nvml is not None:
            self._nvml = None
            self._handle = None
            self._readers = []
            self._library.release()
