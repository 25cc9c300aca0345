"""How much memory arrays we are about to make may take: at most half of what is free when they are made, so a
typo in a batch size or a crafted archive is refused with a sentence instead of a MemoryError (or the OOM killer).
"""

from __future__ import annotations

MEMORY_SHARE = 0.5


def shortfall(needed_bytes: int) -> str | None:
    """Why `needed_bytes` is too much here ("need 45.0 GiB, more than half of the 20.1 GiB of memory free here"),
    or None when it fits."""
    import psutil

    available = psutil.virtual_memory().available
    if needed_bytes <= MEMORY_SHARE * available:
        return None
    return (f"need {needed_bytes / 2**30:,.1f} GiB, more than half of the {available / 2**30:,.1f} GiB of memory "
            "free here")
