"""Brings a database to the schema this Studio knows, with the Alembic scripts shipped in `storage/migrations`.

No alembic.ini is involved: the configuration is built here, and the caller's connection is handed to env.py,
so the version check, the upgrade and the caller's retry policy share one transaction. A database stamped with
a revision we do not know was written by a newer Studio: we refuse it before writing anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, inspect, text

from storage.errors import DatabaseSchemaTooNewError, NotAStudioDatabaseError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"
# Any constant works; it only has to be the same in every Studio so two workstations never migrate at once.
_POSTGRES_MIGRATION_LOCK = 0x5354_5544_494F  # "STUDIO"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration scripts found in {MIGRATIONS_DIR}")
    return head


@dataclass(frozen=True)
class SchemaState:
    revisions: tuple[str, ...]
    head: str

    @property
    def is_current(self) -> bool:
        return self.revisions == (self.head,)


def read_schema_state(connection: Connection, *, where: str) -> SchemaState:
    """The revisions stamped in the database; raises if they are newer than ours or the tables are not ours."""
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head() or ""
    revisions = tuple(MigrationContext.configure(connection).get_current_heads())
    for revision in revisions:
        try:
            known = script.get_revision(revision)
        except CommandError:
            known = None
        if known is None:
            raise DatabaseSchemaTooNewError(
                f"{where} was written by a newer version of Open-AutoGLM Studio (schema {revision}; this version "
                f"knows up to {head}). It was not changed. Update Studio, or choose another database with --db.",
                found_revision=revision, known_head=head)
    if not revisions:
        foreign = sorted(set(inspect(connection).get_table_names()) - {VERSION_TABLE})
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise NotAStudioDatabaseError(
                f"{where} already holds tables that are not Studio's ({shown}); it was not changed. "
                "Choose another file or database with --db or AUTOGLM_STUDIO_DB.")
    return SchemaState(revisions, head)


def upgrade_to_head(connection: Connection, *, where: str) -> SchemaState:
    """Applies pending migrations inside the caller's transaction, re-checking the state under the lock."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_MIGRATION_LOCK})
    state = read_schema_state(connection, where=where)
    if not state.is_current:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return SchemaState((state.head,), state.head)
