"""A runtime session made ready once and shared by the scenario, sweep and profile loops.

The benchmark runner owns its session from load to close; scenarios and sweeps
need the same steps (import, load, create, first inference) but run their own
timed loops, so the preparation and its cold-start timings live here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from time import perf_counter_ns

import numpy as np

from core.progress import Progress
from engine.backends.base import Backend, BackendOptions, Session
from engine.device.discovery import DeviceRunner
from engine.model.handle import ModelHandle


@dataclass(frozen=True)
class ColdStart:
    """Cold start, reported apart from the warm steady state (DESIGN §4)."""

    load_ms: float
    session_ms: float
    first_inference_ms: float

    def to_dict(self) -> dict:
        return {
            "load": self.load_ms,
            "session": self.session_ms,
            "first_inference": self.first_inference_ms,
            "total": self.load_ms + self.session_ms + self.first_inference_ms,
        }


@dataclass(frozen=True)
class PreparedSession:
    """A session that has run once, with the call the timed loops repeat."""

    session: Session
    call: Callable[[], object]
    sync: Callable[[], None] | None  # None when the device needs no synchronization before reading the clock
    cold_start: ColdStart

    @property
    def description(self) -> dict:
        return dict(self.session.description)

    def cold_start_dict(self) -> dict:
        return self.cold_start.to_dict()


@contextmanager
def prepared_session(backend: Backend, handle: ModelHandle, runner: DeviceRunner, options: BackendOptions,
                     feed: Mapping[str, np.ndarray], progress: Progress | None = None,
                     ) -> Iterator[PreparedSession]:
    """Loads the model, creates the session, runs it once cold, and closes it on exit.

    The runtime's one-off import happens before the clock starts: it is not the model's cold start.
    """
    report = progress or (lambda fraction, message: None)
    report(0.0, "loading the model")
    backend.import_runtime()
    start = perf_counter_ns()
    loaded = backend.load(handle)
    loaded_at = perf_counter_ns()
    report(0.03, "creating the session")
    session = backend.create_session(loaded, runner, options)
    created_at = perf_counter_ns()
    try:
        report(0.06, "first inference")
        session.run(feed)
        first_done = perf_counter_ns()
        call = session.bind(feed)
        cold_start = ColdStart((loaded_at - start) / 1e6, (created_at - loaded_at) / 1e6, (first_done - created_at) / 1e6)
        yield PreparedSession(session, call, session.synchronize if session.needs_sync else None, cold_start)
    finally:
        session.close()
