"""Moving a damaged SQLite database out of the way without ever deleting it.

When `open_database` raises DatabaseCorruptError the GUI offers "move it aside and start fresh"; this renames
the file (and its -wal / -shm / -journal companions, which belong to it) next to the original, so the user or
support can still try to recover runs from it later.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from storage.errors import StorageError
from storage.failures import translate_os_error

_COMPANION_SUFFIXES = ("-wal", "-shm", "-journal")


def move_database_aside(path: str | os.PathLike[str]) -> Path:
    """Renames `path` to `<name>.corrupt-<UTC time>[-n]` and returns the new path; the database must be closed.
    A file that passes SQLite's integrity check is healthy and is never moved."""
    source = Path(path)
    if not source.exists():
        raise StorageError(f"{source} does not exist, so there is nothing to move aside.")
    if integrity_problem(source) is None:
        raise StorageError(f"{source} passes SQLite's integrity check: it is not damaged, so it was not moved aside.")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    target = _free_name(source.with_name(f"{source.name}.corrupt-{stamp}"))
    try:
        os.rename(source, target)
        for suffix in _COMPANION_SUFFIXES:
            companion = source.with_name(source.name + suffix)
            if companion.exists():
                os.rename(companion, target.with_name(target.name + suffix))
    except OSError as error:
        raise translate_os_error(error, where=f"moving {source} aside") from error
    return target


def integrity_problem(path: Path) -> str | None:
    """What SQLite's integrity check finds wrong with the file (read-only), or None for a healthy database."""
    try:
        connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            rows = connection.execute("PRAGMA integrity_check").fetchall()
        finally:
            connection.close()
    except sqlite3.Error as error:
        return str(error)
    found = [str(row[0]) for row in rows]
    return None if found == ["ok"] else "; ".join(found[:3])


def _free_name(candidate: Path) -> Path:
    """Never overwrite an earlier moved-aside copy: that would lose it as surely as deleting it."""
    if not _taken(candidate):
        return candidate
    number = 2
    while _taken(candidate.with_name(f"{candidate.name}-{number}")):
        number += 1
    return candidate.with_name(f"{candidate.name}-{number}")


def _taken(candidate: Path) -> bool:
    return any(candidate.with_name(candidate.name + suffix).exists() for suffix in ("", *_COMPANION_SUFFIXES))
