"""The contract every telemetry source follows, so the sampler can treat CPU, GPU, RAPL, thermal, NPU
and replayed data alike and isolate a source that fails from the others.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum

from profilers.metrics import SourceCapabilities


class TelemetrySource(ABC):
    """A producer of metric values.

    `open` probes the machine once (it may be slow: driver init, priming counters) and says what
    will be produced; `read` must be cheap because the sampler calls it up to 100 times a second;
    `close` releases drivers and files. `read` returns values only for keys listed by `open`
    (a key may be missing from one read when that reading could not be taken this time).
    `read` raises `profilers.errors.SourceReadError` (or anything else) when the source can no
    longer be trusted; the sampler then marks it failed and keeps sampling the others.
    """

    name: str = "source"
    live: bool = True

    @abstractmethod
    def open(self) -> SourceCapabilities: ...

    @abstractmethod
    def read(self) -> dict[str, float]: ...

    def close(self) -> None:  # noqa: B027 - most sources hold nothing to release
        """Release what `open` acquired. Safe to call more than once."""


class SourceState(str, Enum):
    PENDING = "pending"  # not opened yet
    ACTIVE = "active"  # opened, producing metrics
    UNAVAILABLE = "unavailable"  # opened, but nothing to measure on this machine (see the reasons)
    FAILED = "failed"  # raised while opening or reading; no longer read
    CLOSED = "closed"


@dataclass(frozen=True)
class SourceStatus:
    source: str
    state: SourceState
    live: bool = True
    error: str = ""  # for FAILED: the error type and message, as the user will see it
    failed_at_ns: int | None = None
