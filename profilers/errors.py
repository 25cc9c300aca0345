"""Typed telemetry failures a user can act on.

Each message is shown as it is (one line in the CLI, a dialog in the GUI), so it names the
source, file or device at fault and says what to do about it. A metric the machine cannot
give is *not* an error: sources report it as unavailable with a reason and keep going.
"""

from __future__ import annotations


class TelemetryError(Exception):
    """Base of every failure raised by `profilers`."""


class SamplerConfigError(TelemetryError, ValueError):
    """The sampler was asked for something it cannot do (a rate outside 1-100 Hz, an empty buffer)."""


class SamplerStateError(TelemetryError):
    """A sampler call made in the wrong state (start twice, snapshot before prepare)."""


class SamplerStopTimeoutError(TelemetryError):
    """The sampler thread did not finish in time, usually because a source read hangs in a driver call."""


class SourceReadError(TelemetryError):
    """A live source stopped answering mid-run; the sampler marks it failed and keeps the others going."""


class DeviceLostError(SourceReadError):
    """A device disappeared mid-run (an NVIDIA GPU 'fell off the bus', an NPU was unbound)."""


class TelemetryFileError(TelemetryError):
    """A recorded telemetry file cannot be replayed: missing, not our format, or damaged."""


class SummaryInputError(TelemetryError, ValueError):
    """A run summary was asked for an impossible window or impossible counts."""
