"""JSON from files a user or an attacker hands us, read within limits: a regular file of bounded size, UTF-8,
integers of bounded length and bounded nesting. Every way it can fail is one BoundedJsonError with a short reason.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

MAX_BYTES = 16 * 2**20  # recipes and manifests are a few KiB
MAX_INT_DIGITS = 30  # far past any count or size we take; Python itself gives up at 4,300
MAX_DEPTH = 64  # recipes and manifests nest 3 or 4 deep


class BoundedJsonError(ValueError):
    """The text is not JSON we accept; the message says why in a few words."""


def read_json_file(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> Any:
    """The JSON document in `path` (at most `max_bytes`, default MAX_BYTES); OSError when it cannot be read,
    BoundedJsonError when it is not acceptable."""
    path = Path(path)
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    with open(path, "rb") as stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            raise BoundedJsonError("not a regular file")
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise BoundedJsonError(f"larger than {max_bytes // 2**20} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BoundedJsonError(f"not UTF-8 text (byte {error.start})") from None
    return loads(text)


def loads(text: str) -> Any:
    """json.loads with the limits above."""
    try:
        document = json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as error:
        raise BoundedJsonError(f"not valid JSON: {error}") from None
    except RecursionError:
        raise BoundedJsonError(f"nested deeper than {MAX_DEPTH} levels") from None
    if _depth(document) > MAX_DEPTH:
        raise BoundedJsonError(f"nested deeper than {MAX_DEPTH} levels")
    return document


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise BoundedJsonError(f"an integer of {len(text.lstrip('-')):,} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _depth(value: Any) -> int:
    deepest, level, pending = 0, 0, [(value, 1)]
    while pending:
        value, level = pending.pop()
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            break
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        pending.extend((child, level + 1) for child in children)
    return deepest
