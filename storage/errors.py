"""Typed storage failures whose messages tell the user what to do next.

The CLI prints `str(error)` on one line and the GUI shows it in a dialog, so every message names the database and the
way out. Callers branch on the class (for instance to offer "move the damaged file aside"), never on the text.
"""

from __future__ import annotations

from pathlib import Path


class StorageError(Exception):
    """Base class: anything the storage layer refuses or cannot do."""


class DatabaseUnavailableError(StorageError):
    """The database cannot be reached or opened at all (server down, bad URL, missing driver)."""


class DatabaseSchemaTooNewError(StorageError):
    """The database was written by a newer Studio; it was left untouched."""

    def __init__(self, message: str, *, found_revision: str, known_head: str):
        super().__init__(message)
        self.found_revision = found_revision
        self.known_head = known_head


class NotAStudioDatabaseError(StorageError):
    """The file or schema already holds someone else's tables; we refuse to add ours next to them."""


class DatabaseCorruptError(StorageError):
    """The SQLite file is damaged or is not a database; `storage.move_database_aside(error.path)` keeps it safe."""

    def __init__(self, message: str, *, path: Path | None):
        super().__init__(message)
        self.path = path


class DatabaseLockedError(StorageError):
    """Another process kept the database locked through every retry."""


class DatabaseReadOnlyError(StorageError):
    """The database or its folder cannot be written (permissions, read-only mount, read-only transaction)."""


class DatabaseFullError(StorageError):
    """The disk (or the database's size cap) is full."""


class RunNotFoundError(StorageError):
    """No run with the given id exists in this database."""


class SweepNotFoundError(StorageError):
    """No sweep with the given id exists in this database."""


class RunStateError(StorageError):
    """The run writer was used out of order (append after finish, finish twice)."""


class DamagedSamplesError(StorageError):
    """A stored chunk of samples cannot be decoded (damaged, truncated, or from an unknown codec)."""


class RunImportError(StorageError):
    """The file is not a run exported by the studio, or not one that can be imported."""


class InvalidRequestError(StorageError):
    """A request no database could answer as asked (a negative offset, a page size out of range)."""


class ComparisonError(StorageError):
    """The runs asked for cannot be compared (too few, too many, or without samples)."""


class ExportError(StorageError):
    """An export could not be written; nothing half-written was left at the destination."""
