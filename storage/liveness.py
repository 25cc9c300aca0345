"""Tells a run whose writer crashed from a run still being written, possibly by another Studio.

Each run row records the writing process (host, pid, process start time) and a heartbeat the writer refreshes.
On this host we ask the OS whether that exact process still exists (the start time guards against a recycled
pid); for runs written from another workstation (a shared PostgreSQL server) only the heartbeat can tell, so
a run counts as abandoned when its heartbeat is older than `STALE_HEARTBEAT`.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

import psutil

HEARTBEAT_EVERY = timedelta(seconds=5)
STALE_HEARTBEAT = timedelta(minutes=2)
_START_TIME_TOLERANCE_S = 1.0


@dataclass(frozen=True)
class WriterIdentity:
    host: str
    pid: int
    started: float  # process creation time, seconds since the epoch


def this_process() -> WriterIdentity:
    return WriterIdentity(socket.gethostname(), os.getpid(), psutil.Process().create_time())


def writer_alive(host: str, pid: int | None, started: float | None, heartbeat_at: datetime | None,
                 now: datetime) -> bool:
    """Whether the process that created a `running` run may still be writing it."""
    if host == socket.gethostname() and pid is not None:
        return _local_process_alive(pid, started)
    return heartbeat_at is not None and now - heartbeat_at < STALE_HEARTBEAT


def _local_process_alive(pid: int, started: float | None) -> bool:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        created = process.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True  # it exists but belongs to someone we may not inspect: assume it is still writing
    return started is None or abs(created - started) < _START_TIME_TOLERANCE_S
