"""The life cycle of a run, apart from the schema so that listing the statuses needs no database library."""

RUN_STATUSES = ("running", "completed", "cancelled", "failed", "interrupted")
FINISHED_STATUSES = ("completed", "cancelled", "failed", "interrupted")
