"""Alembic environment and revision scripts for the Studio schema, run by `storage.migrate` (no alembic.ini)."""
