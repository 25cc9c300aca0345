"""Alembic environment: runs the revisions on the connection that `storage.migrate` hands over.

There is no alembic.ini and no URL here on purpose: opening a database (with its pragmas, retries and error
translation) belongs to `storage.database`. To write a new revision, build `storage.migrate.alembic_config()`,
put an open connection to a database at the current head in `config.attributes["connection"]`, and call
`alembic.command.revision(config, message, autogenerate=True)`; then review the generated operations by hand.
"""

from alembic import context

from storage.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Studio migrations run through storage.migrate.upgrade_to_head with an open connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
