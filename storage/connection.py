"""A connection to a Studio database: where it lives, how SQLite is tuned, transactions, migrations on open.

Any SQLAlchemy URL works; the default is a SQLite file in the user's data folder. SQLite runs in WAL mode with
`synchronous=NORMAL` (a crash loses at most the last commit, never the file) and with SQLAlchemy emitting BEGIN
itself, so migrations are transactional and every write transaction is `BEGIN IMMEDIATE`: it waits for the lock
up front under the busy timeout instead of failing half way through. PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

import errno
import json
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

import platformdirs
from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from storage.errors import DatabaseUnavailableError
from storage.failures import translate_os_error, with_lock_retry
from storage.migrate import read_schema_state, upgrade_to_head

ENV_VAR = "AUTOGLM_STUDIO_DB"
APP_DIR_NAME = "autoglm-studio"
DB_FILE_NAME = "studio.db"
_WRITE_OPTION = "studio_write_transaction"

T = TypeVar("T")


def default_database_path() -> Path:
    return Path(platformdirs.user_data_dir(APP_DIR_NAME, appauthor=False)) / DB_FILE_NAME


def resolve_database_url(url: str | None = None) -> URL:
    """The URL to open: the argument, else $AUTOGLM_STUDIO_DB, else the default SQLite file.

    A bare path means a SQLite file; `postgresql://` and `postgres://` mean psycopg 3, the driver we ship.
    """
    chosen = url or os.environ.get(ENV_VAR) or str(default_database_path())
    if "://" not in chosen:
        return URL.create("sqlite", database=str(Path(chosen).expanduser().absolute()))
    try:
        parsed = make_url(chosen)
    except sa_exc.ArgumentError as error:
        raise DatabaseUnavailableError(f"{chosen!r} is not a database URL ({error}). Use a file path, "
                                       "sqlite:///path/to/studio.db or postgresql://user@host/dbname.") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


@dataclass(frozen=True)
class DatabaseOptions:
    busy_timeout_s: float = 5.0  # how long one attempt waits for another writer's lock
    lock_attempts: int = 3  # attempts before a DatabaseLockedError
    lock_pause_s: float = 0.2


class OpenWriter(Protocol):
    """A run writer as the connection sees it: closing the database finishes the ones still writing."""

    @property
    def is_active(self) -> bool: ...

    def finish(self, status: str, *, error: str | None = None) -> object: ...


class Connection:
    """The engine, transactions with lock retries, and the writers to finish on close; repositories build on it."""

    def __init__(self, engine: Engine, url: URL, sqlite_path: Path | None, options: DatabaseOptions):
        self.engine = engine
        self.url = url
        self.sqlite_path = sqlite_path
        self.options = options
        self._write_engine = engine.execution_options(**{_WRITE_OPTION: True})
        self._writers: weakref.WeakSet[OpenWriter] = weakref.WeakSet()
        self._writers_lock = threading.Lock()
        self._closed = False

    @property
    def display_name(self) -> str:
        return str(self.sqlite_path) if self.sqlite_path else self.url.render_as_string(hide_password=True)

    def transact(self, work: Callable[[Session], T], *, write: bool, where: str) -> T:
        """Runs `work` in one transaction, retrying lock contention, and raises typed StorageErrors."""
        if self._closed:
            raise DatabaseUnavailableError(f"{self.display_name} was closed before {where}")

        def attempt() -> T:
            with self.session(write=write) as session:
                return work(session)

        return with_lock_retry(attempt, where=where, attempts=self.options.lock_attempts,
                               pause_s=self.options.lock_pause_s, sqlite_path=self.sqlite_path)

    @contextmanager
    def session(self, *, write: bool) -> Iterator[Session]:
        """A session inside a transaction committed on success; prefer `transact`, which adds retries."""
        with Session(self._write_engine if write else self.engine, expire_on_commit=False) as session:
            with session.begin():
                yield session

    def register_writer(self, writer: OpenWriter) -> None:
        with self._writers_lock:
            self._writers.add(writer)

    def close(self) -> None:
        """Marks runs still being written here `interrupted` (keeping their samples), then releases the database."""
        if self._closed:
            return
        with self._writers_lock:
            writers = [writer for writer in self._writers if writer.is_active]
        first_error: BaseException | None = None
        for writer in writers:
            try:
                writer.finish("interrupted", error="Studio closed the database before the run finished.")
            except Exception as error:  # noqa: BLE001 - the others still need closing; the first is raised below
                first_error = first_error or error
        self._closed = True
        self.engine.dispose()
        if first_error is not None:
            raise first_error

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @classmethod
    def open(cls, url: str | None = None, *, busy_timeout_s: float = 5.0, lock_attempts: int = 3) -> Self:
        """Connects to `url`, $AUTOGLM_STUDIO_DB or the default, creating and migrating the schema as needed."""
        resolved = resolve_database_url(url)
        options = DatabaseOptions(busy_timeout_s=busy_timeout_s, lock_attempts=max(1, lock_attempts))
        engine, sqlite_path = _create_engine(resolved, options)
        connection = cls(engine, resolved, sqlite_path, options)
        try:
            connection._prepare()
        except BaseException:
            engine.dispose()
            raise
        return connection

    def _prepare(self) -> None:
        where = f"opening {self.display_name}"
        state = self.transact(lambda s: read_schema_state(s.connection(), where=self.display_name),
                              write=False, where=where)
        if self.sqlite_path is not None:
            with_lock_retry(self._enable_wal, where=where, attempts=self.options.lock_attempts,
                            pause_s=self.options.lock_pause_s, sqlite_path=self.sqlite_path)
        if not state.is_current:
            self.transact(lambda s: upgrade_to_head(s.connection(), where=self.display_name),
                          write=True, where=f"upgrading the schema of {self.display_name}")

    def _enable_wal(self) -> None:
        """WAL is a property of the file, so it is set once the schema check has shown the file is ours."""
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()
        finally:
            connection.close()


def _create_engine(url: URL, options: DatabaseOptions) -> tuple[Engine, Path | None]:
    try:
        if url.get_backend_name() == "sqlite":
            path = _sqlite_file(url)
            if not url.query and _read_only_file(path):  # listing, showing, comparing and exporting still work
                url = url.set(database=f"file:{path}", query={"mode": "ro", "immutable": "1", "uri": "true"})
            return _create_sqlite_engine(url, path, options), path
        if url.get_backend_name() == "postgresql":
            connect_args: dict[str, Any] = {
                "connect_timeout": max(1, round(options.busy_timeout_s * 2)),
                "options": f"-c lock_timeout={round(options.busy_timeout_s * 1000)}",
            }
            return create_engine(url, pool_pre_ping=True, connect_args=connect_args), None
        return create_engine(url, pool_pre_ping=True), None
    except (ImportError, sa_exc.NoSuchModuleError) as error:
        raise DatabaseUnavailableError(
            f"No driver for {url.render_as_string(hide_password=True)} ({error}). PostgreSQL needs "
            "the 'psycopg[binary]' package.") from None


def _read_only_file(path: Path) -> bool:
    """An existing database file this process cannot write (permissions, a read-only mount, an immutable file):
    it is opened read-only, as a snapshot nothing else changes, and saving to it fails with a clear error."""
    if not path.is_file():
        return False
    try:
        with open(path, "r+b"):
            return False
    except OSError as error:
        return error.errno in (errno.EACCES, errno.EPERM, errno.EROFS)


DAMAGED_KEY = "__damaged__"  # a stored JSON value that could not be decoded: {DAMAGED_KEY: why}


def tolerant_json(text: str) -> Any:
    """SQLite's JSON columns are text a damaged file can garble; one such value marks its row damaged
    ({DAMAGED_KEY: why}, see storage.run_queries) instead of failing every query that reads it."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        return {DAMAGED_KEY: f"not valid JSON ({str(error).splitlines()[0][:120]})"}


def _sqlite_file(url: URL) -> Path:
    database = url.database or ""
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        raise DatabaseUnavailableError(
            "An in-memory SQLite database cannot be shared with the run writer thread; give a file path "
            "(a temporary folder is fine).")
    path = Path(database[len("file:"):] if database.startswith("file:") else database).expanduser()
    if url.query.get("mode") != "ro":
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise translate_os_error(error, where=f"creating the folder for {path}") from error
    return path


def _create_sqlite_engine(url: URL, path: Path, options: DatabaseOptions) -> Engine:
    engine = create_engine(url, connect_args={"timeout": options.busy_timeout_s}, json_deserializer=tolerant_json)
    busy_ms = round(options.busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _tune(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
