"""Turns driver exceptions (sqlite3, psycopg, OSError) into typed storage errors, and retries lock contention.

SQLAlchemy wraps every driver error in `DBAPIError` with the original as `.orig`; the driver's own code
(`sqlite_errorcode`, PostgreSQL's SQLSTATE) is the only reliable signal, so we classify on it rather than on the
message text, which changes between versions and locales.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import exc as sa_exc

from storage.errors import (
    DatabaseCorruptError,
    DatabaseFullError,
    DatabaseLockedError,
    DatabaseReadOnlyError,
    DatabaseUnavailableError,
    StorageError,
)

T = TypeVar("T")

# Primary result codes (https://sqlite.org/rescode.html); extended codes keep these in their low byte.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR = 5, 6, 8, 10
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26

# PostgreSQL SQLSTATEs: disk_full, out_of_memory-ish insufficient resources, read_only_sql_transaction,
# lock_not_available, deadlock_detected, serialization_failure; class 08 is connection trouble.
_PG_FULL = {"53100", "53000"}
_PG_READ_ONLY = {"25006"}
_PG_LOCKED = {"55P03", "40P01", "40001"}


def translate(error: BaseException, *, where: str, sqlite_path: Path | None = None) -> StorageError | None:
    """The typed error for a failure while doing `where` (e.g. "saving run 12"), or None for a programming error.

    None tells the caller to let the original exception propagate: a TypeError is a bug to fix, not a
    storage condition to show the user.
    """
    if isinstance(error, StorageError):
        return error
    if isinstance(error, OSError):
        return translate_os_error(error, where=where)
    original = getattr(error, "orig", None) if isinstance(error, sa_exc.DBAPIError) else error
    sqlite_code = getattr(original, "sqlite_errorcode", None)
    if sqlite_code is not None:
        return _from_sqlite(int(sqlite_code) & 0xFF, original, where, sqlite_path)
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate is not None or _is_psycopg(original):
        return _from_postgres(sqlstate, original, where)
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return DatabaseUnavailableError(f"Lost the connection to the database while {where}: {original}")
    if isinstance(error, sa_exc.OperationalError):
        return DatabaseUnavailableError(f"The database failed while {where}: {original}")
    if isinstance(error, sa_exc.DBAPIError):
        return StorageError(f"The database refused {where}: {original}")
    return None


def with_lock_retry(action: Callable[[], T], *, where: str, attempts: int, pause_s: float,
                    sqlite_path: Path | None = None) -> T:
    """Run `action`, retrying while another process holds the lock, then fail with DatabaseLockedError.

    Each attempt already waits the driver's busy timeout, so a few attempts cover a long checkpoint or a
    colleague's write without hanging the app forever.
    """
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as error:  # noqa: BLE001 - translated and re-raised, never swallowed
            typed = translate(error, where=where, sqlite_path=sqlite_path)
            if typed is None:
                raise  # a programming error, not a storage condition
            if not isinstance(typed, DatabaseLockedError) or attempt == attempts:
                if typed is error:
                    raise
                raise typed from error
        time.sleep(pause_s * attempt)
    raise AssertionError("unreachable: the loop returns or raises")


def _from_sqlite(code: int, original: BaseException, where: str, path: Path | None) -> StorageError:
    location = str(path) if path else "the SQLite database"
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return DatabaseLockedError(
            f"{location} stayed locked by another program while {where}. Close other Studio windows or "
            "tools using it, then try again.")
    if code == _SQLITE_READONLY:
        return DatabaseReadOnlyError(
            f"{location} cannot be written while {where} ({original}). Check the file's permissions, or choose a "
            "writable location with --db or AUTOGLM_STUDIO_DB.")
    if code == _SQLITE_FULL:
        return DatabaseFullError(
            f"The disk holding {location} is full while {where}. Free some space and retry saving, "
            "or export the run to another disk.")
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return DatabaseCorruptError(
            f"{location} is damaged or is not a database ({original}). Studio can move it aside (it is kept, "
            "renamed, never deleted) and start a new database.", path=path)
    if code == _SQLITE_CANTOPEN:
        return DatabaseReadOnlyError(
            f"Cannot open or create {location} while {where} ({original}). The folder must exist and be writable; "
            "choose another location with --db or AUTOGLM_STUDIO_DB.")
    if code == _SQLITE_IOERR:
        return DatabaseUnavailableError(f"The disk failed while {where} on {location}: {original}")
    return StorageError(f"SQLite refused {where} on {location}: {original}")


def _from_postgres(sqlstate: str | None, original: BaseException, where: str) -> StorageError:
    if sqlstate in _PG_FULL:
        return DatabaseFullError(f"The PostgreSQL server is out of disk space while {where}: {original}")
    if sqlstate in _PG_READ_ONLY:
        return DatabaseReadOnlyError(
            f"The PostgreSQL server only allows reading (read-only transaction or standby) while {where}: {original}")
    if sqlstate in _PG_LOCKED:
        return DatabaseLockedError(f"Another client kept a lock on the PostgreSQL database while {where}: {original}")
    if sqlstate is None or sqlstate.startswith("08") or sqlstate.startswith("57P") or sqlstate.startswith("28"):
        return DatabaseUnavailableError(f"Cannot use the PostgreSQL server while {where}: {original}".strip())
    return DatabaseUnavailableError(f"PostgreSQL refused {where} (SQLSTATE {sqlstate}): {original}")


def translate_os_error(error: OSError, *, where: str) -> StorageError:
    target = error.filename or "the destination"
    if error.errno == errno.ENOSPC:
        return DatabaseFullError(f"The disk is full while {where} ({target}). Free some space and try again.")
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return DatabaseReadOnlyError(
            f"{target} is not writable while {where} ({error.strerror}). Choose a writable location.")
    return DatabaseUnavailableError(f"Could not access {target} while {where}: {error.strerror or error}")


def _is_psycopg(original: object) -> bool:
    return type(original).__module__.startswith("psycopg")
