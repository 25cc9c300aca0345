"""Reading sysfs under a configurable root.

Every sysfs path (powercap, thermal, NPU) goes through `sysfs_root()`, which honours the
`AUTOGLM_SYSFS_ROOT` environment variable (default `/sys`). Containers can then point at a
bind-mounted host `/sys`, and tests at a fake tree in `tmp_path`. The root is read at each
source's `open`, not at import, so changing the variable takes effect for the next sampler.
"""

from __future__ import annotations

import os
from pathlib import Path

SYSFS_ROOT_ENV = "AUTOGLM_SYSFS_ROOT"
DEFAULT_SYSFS_ROOT = "/sys"


def sysfs_root() -> Path:
    return Path(os.environ.get(SYSFS_ROOT_ENV) or DEFAULT_SYSFS_ROOT)


def sysfs_root_is_default() -> bool:
    """True when we read the real `/sys`, so libraries with hard-coded paths (psutil) agree with us."""
    return os.path.realpath(sysfs_root()) == os.path.realpath(DEFAULT_SYSFS_ROOT)


def read_text(path: Path) -> str:
    """The stripped content of a sysfs attribute. Raises OSError (PermissionError included) as is."""
    with open(path, encoding="ascii", errors="replace") as handle:
        return handle.read().strip()


def read_int(path: Path) -> int:
    """An integer attribute; ValueError when the kernel wrote something else."""
    return int(read_text(path))


def describe_os_error(error: OSError) -> str:
    """A short reason for an unreadable attribute, for `UnavailableMetric.reason`."""
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, FileNotFoundError):
        return "no such file"
    return error.strerror or type(error).__name__
