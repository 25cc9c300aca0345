"""An open Studio database: the connection plus its repositories, and crashed-run recovery on open.

Repositories build on `storage.connection.Connection`; this module sits above both, so nothing imports in a circle.
"""

from __future__ import annotations

from storage.catalog import Catalog
from storage.connection import Connection, default_database_path, resolve_database_url
from storage.runs import RunRepository
from storage.sweeps import SweepRepository

__all__ = ["Database", "default_database_path", "open_database", "resolve_database_url"]


class Database(Connection):
    """An open Studio database. Use `open_database`; close it (or use `with`) to stop writers and free the file."""

    interrupted_at_open: tuple[int, ...] = ()
    interrupted_sweeps_at_open: tuple[int, ...] = ()

    @property
    def runs(self) -> RunRepository:
        return RunRepository(self)

    @property
    def sweeps(self) -> SweepRepository:
        return SweepRepository(self)

    @property
    def catalog(self) -> Catalog:
        return Catalog(self)


def open_database(url: str | None = None, *, busy_timeout_s: float = 5.0, lock_attempts: int = 3,
                  mark_interrupted: bool = True) -> Database:
    """Opens (creating and migrating as needed) the Studio database at `url`, $AUTOGLM_STUDIO_DB or the default.

    Runs left `running` by a process that no longer exists are marked `interrupted`
    (`Database.interrupted_at_open` lists them). Raises a StorageError subclass from `storage.errors`.
    """
    database = Database.open(url, busy_timeout_s=busy_timeout_s, lock_attempts=lock_attempts)
    if mark_interrupted:
        try:
            database.interrupted_at_open = database.runs.mark_interrupted_runs()
            database.interrupted_sweeps_at_open = database.sweeps.mark_interrupted_sweeps()
        except BaseException:
            database.engine.dispose()
            raise
    return database
