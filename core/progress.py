"""How long work reports how far it got, and how it is asked to stop.

Long work is a callable taking `cancel` (a `threading.Event` the caller sets to stop it; the work checks it at
least once per iteration) and `progress(fraction, message)` with 0 <= fraction <= 1.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

Progress = Callable[[float, str], None]
Cancel = threading.Event


def no_progress(fraction: float, message: str) -> None:
    """The progress callback of a caller who does not watch."""


def scaled(progress: Progress, start: float, end: float) -> Progress:
    """A callback that maps a step's own 0-1 onto [start, end] of its caller's bar."""
    span = end - start
    return lambda fraction, message: progress(start + span * fraction, message)
