"""The protocol every runtime implements, and the options a user can set."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from engine.device.discovery import DeviceRunner
from engine.errors import InputError
from engine.model.handle import ModelHandle

EXECUTION_MODES = ("sequential", "parallel")
GRAPH_OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")


THREADS_PER_CORE = 4  # more threads than this many per core only slow a run down (and thousands crash runtimes)


def max_threads() -> int:
    return THREADS_PER_CORE * (os.cpu_count() or 1)


@dataclass(frozen=True)
class BackendOptions:
    threads: int | None = None  # intra-op threads; None leaves the runtime's default
    inter_op_threads: int | None = None
    execution_mode: str = "sequential"  # ONNX Runtime only
    graph_optimization_level: str = "all"  # ONNX Runtime only
    inference_mode: bool = True  # PyTorch only: torch.inference_mode() instead of no_grad()

    def __post_init__(self) -> None:
        for name in ("threads", "inter_op_threads"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= max_threads():
                raise InputError(f"{name} must be 1 to {max_threads()} ({THREADS_PER_CORE}× the {os.cpu_count() or 1} "
                                 f"cores here), got {value}")
        if self.execution_mode not in EXECUTION_MODES:
            raise InputError(f"execution mode must be one of {EXECUTION_MODES}, got '{self.execution_mode}'")
        if self.graph_optimization_level not in GRAPH_OPTIMIZATION_LEVELS:
            raise InputError(
                f"graph optimization level must be one of {GRAPH_OPTIMIZATION_LEVELS}, got '{self.graph_optimization_level}'"
            )

    def to_dict(self) -> dict:
        return asdict(self)


class Session(Protocol):
    # What really runs the model (active providers, threads), for the result and fingerprint.
    description: dict[str, Any]
    # Exceptions the runtime raises when a run fails; the runner turns them into BackendError.
    run_errors: tuple[type[BaseException], ...]
    # Whether device work is asynchronous and `synchronize` must be called before reading the clock.
    needs_sync: bool

    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One inference, outputs copied back to host memory."""

    def bind(self, feed: Mapping[str, np.ndarray]) -> Callable[[], object]:
        """A call that runs the bound feed with the least overhead, outputs left where they are."""

    def synchronize(self) -> None: ...

    def close(self) -> None: ...


class Backend(Protocol):
    name: str

    def import_runtime(self) -> None:
        """Import the runtime library, so its one-off import cost is not counted as the model's cold start."""

    def load(self, handle: ModelHandle) -> object:
        """Read the model from disk (timed as the 'load' part of cold start)."""

    def create_session(self, loaded: object, runner: DeviceRunner, options: BackendOptions) -> Session: ...
