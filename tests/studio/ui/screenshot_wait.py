"""The screenshot scripts' wait: run Qt's event loop until a condition holds, then let the last paint settle."""

from __future__ import annotations

import time


def wait_until(app, condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        app.processEvents()
        time.sleep(0.01)
    settle = time.monotonic() + 0.3
    while time.monotonic() < settle:
        app.processEvents()
