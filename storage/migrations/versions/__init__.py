"""Schema revisions, oldest first; each one is applied by `storage.migrate.upgrade_to_head`."""
