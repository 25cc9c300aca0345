"""Loading NVML (`import pynvml`, from nvidia-ml-py) lazily and sharing one initialisation.

`pynvml` is imported inside `acquire`, never at package import, so the CLI starts fast and a
machine without the NVIDIA driver degrades to "unavailable, because ..." instead of an
ImportError. `nvmlInit`/`nvmlShutdown` are reference counted because each GPU is its own source
(one GPU falling off the bus must not stop the others) while NVML is initialised once.
Tests pass a fake module replaying recorded NVML results instead of the real one.
"""

from __future__ import annotations

import threading
from types import ModuleType

# NVML return codes (nvml.h); used by value so decoding works with any module that raises NVMLError.
NVML_SUCCESS = 0
_ERROR_NOT_SUPPORTED = 3
_ERROR_NO_PERMISSION = 4
_ERROR_DRIVER_NOT_LOADED = 9
_ERROR_LIBRARY_NOT_FOUND = 12
ERROR_FUNCTION_NOT_FOUND = 13
_ERROR_GPU_IS_LOST = 15
_ERROR_RESET_REQUIRED = 16
_ERROR_LIB_RM_VERSION_MISMATCH = 18
_ERROR_UNINITIALIZED = 1

# Errors after which the device (or the whole driver) can no longer be trusted for this run.
DEVICE_LOST_CODES = frozenset({_ERROR_GPU_IS_LOST, _ERROR_RESET_REQUIRED, _ERROR_UNINITIALIZED,
                               _ERROR_DRIVER_NOT_LOADED, _ERROR_LIB_RM_VERSION_MISMATCH})


class NvmlUnavailable(Exception):
    """NVML cannot be used on this machine; `str(error)` is the reason shown to the user."""


def nvml_error_code(error: BaseException) -> int | None:
    """The NVML return code carried by a pynvml NVMLError, or None for any other exception."""
    value = getattr(error, "value", None)
    return value if isinstance(value, int) else None


def is_nvml_error(module: ModuleType, error: BaseException) -> bool:
    base = getattr(module, "NVMLError", None)
    return base is not None and isinstance(error, base)


def describe_nvml_error(error: BaseException, what: str) -> str:
    """A user-facing reason for a metric NVML would not give."""
    code = nvml_error_code(error)
    if code == _ERROR_NOT_SUPPORTED:
        return f"{what} is not supported by this GPU or driver (NVML: Not Supported)"
    if code == _ERROR_NO_PERMISSION:
        return f"{what} needs more permissions than this user has (NVML: Insufficient Permissions)"
    if code == ERROR_FUNCTION_NOT_FOUND:
        return f"{what} is not available in this driver version; update the NVIDIA driver (NVML: Function Not Found)"
    return f"{what} could not be read (NVML: {error})"


def _init_failure_reason(error: BaseException) -> str:
    code = nvml_error_code(error)
    if code == _ERROR_LIBRARY_NOT_FOUND:
        return "no NVIDIA driver: the NVML library (libnvidia-ml.so.1 / nvml.dll) was not found"
    if code == _ERROR_DRIVER_NOT_LOADED:
        return "NVIDIA driver installed but not loaded (nvidia-smi would fail too); load the kernel module or reboot"
    if code == _ERROR_NO_PERMISSION:
        return "no permission to open the NVIDIA devices; check the permissions of /dev/nvidia*"
    if code == _ERROR_LIB_RM_VERSION_MISMATCH:
        return "NVIDIA driver and NVML library versions differ (driver updated without reboot); reboot"
    return f"NVML could not be initialised: {error}"


class NvmlLibrary:
    """One NVML initialisation shared by several users; `module` defaults to the real `pynvml`."""

    def __init__(self, module: ModuleType | None = None):
        self._module = module
        self._users = 0
        self._lock = threading.Lock()

    @property
    def module(self) -> ModuleType:
        if self._module is None:
            raise NvmlUnavailable("NVML has not been loaded yet (call acquire first)")
        return self._module

    def acquire(self) -> ModuleType:
        """Initialise NVML on first use; raises NvmlUnavailable with the reason when it cannot."""
        with self._lock:
            if self._module is None:
                try:
                    import pynvml  # heavy-ish and optional: only when a GPU source is opened
                except ImportError as error:
                    raise NvmlUnavailable(f"nvidia-ml-py is not installed ({error}); pip install nvidia-ml-py") \
                        from error
                self._module = pynvml
            if self._users == 0:
                try:
                    self._module.nvmlInit()
                except Exception as error:
                    if is_nvml_error(self._module, error):
                        raise NvmlUnavailable(_init_failure_reason(error)) from error
                    raise
            self._users += 1
            return self._module

    def release(self) -> None:
        """Drop one user; the last one shuts NVML down. A failing shutdown (driver already gone) is ignored
        because there is nothing left to release and the run's data is already safe."""
        with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._users == 0 and self._module is not None:
                try:
                    self._module.nvmlShutdown()
                except Exception as error:
                    if not is_nvml_error(self._module, error):
                        raise

    @property
    def users(self) -> int:
        return self._users
