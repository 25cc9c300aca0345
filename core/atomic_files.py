"""Outputs appear whole or not at all: written under a temporary name beside the target, then renamed.

A failure (full disk, cancel, a crash) leaves the target as it was and removes the temporary file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed onto `path` when the block succeeds."""
    target = Path(path)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes_atomically(path: str | os.PathLike, write: Callable[[object], None], *, fsync: bool = True) -> Path:
    """Calls `write(stream)` on a binary stream, then moves the file into place."""
    target = Path(path)
    with atomic_path(target) as temporary, temporary.open("wb") as stream:
        write(stream)
        stream.flush()
        if fsync:
            os.fsync(stream.fileno())
    return target


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomically(path, lambda stream: stream.write(text.encode("utf-8")), fsync=False)
