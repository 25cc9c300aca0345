"""A clock that only moves when a fake session says its work took time, so every latency in a test is exact."""

from __future__ import annotations

import threading

MS = 1_000_000


class VirtualClock:
    def __init__(self) -> None:
        self.now = 1_000 * MS

    def __call__(self) -> int:
        return self.now

    def wait_until(self, deadline_ns: int, cancel: threading.Event) -> None:
        self.now = max(self.now, deadline_ns)


def fixed_service(clock: VirtualClock, service_ns: int, calls: list | None = None):
    """A session call that takes `service_ns`; `calls` collects the time each one ended."""

    def call() -> None:
        clock.now += service_ns
        if calls is not None:
            calls.append(clock.now)

    return call
