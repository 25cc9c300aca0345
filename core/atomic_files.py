"""Outputs appear whole or not at all: written under a temporary name beside the target, then renamed.

A failure (full disk, cancel, a crash) leaves the target as it was and removes the temporary file.
"""

from __future__ import annotations

import os
import stat
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
        os.chmod(temporary, _mode_for(target))  # mkstemp makes it 0600: a report or export must stay readable
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _mode_for(target: Path) -> int:
    """The replaced file's permissions, or those of a new file under the process's umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~_UMASK


def _current_umask() -> int:
    """Read once, at import: setting it to read it back is not safe once other threads create files."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


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
