"""NumPy files a user hands us (.npz archives of named arrays, .npy single arrays), read within limits.

An .npz is a zip: its member count and the uncompressed size its members declare are checked before anything is
decompressed, so a small archive cannot expand into more memory than the machine has free. Pickled objects are
never loaded. Every way reading can fail is one ArrayFileError saying why in a few words; callers put it in
their own words ("calibration data X: …").
"""

from __future__ import annotations

import errno
import zipfile
from pathlib import Path

import numpy as np

from engine.errors import first_line

MAX_MEMBERS = 4096
MEMORY_SHARE = 0.5  # the arrays may take at most this share of the memory free when they are read


class ArrayFileError(ValueError):
    """Not a readable .npz or .npy within the limits; the message says why."""


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz archive, by name; FileNotFoundError when there is no such file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
    if not zipfile.is_zipfile(path):
        hint = " (an .npy holds one unnamed array: save it with np.savez(path, NAME=array))" \
            if _is_npy(path) else ""
        raise ArrayFileError(f"not a readable .npz archive{hint}")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise ArrayFileError(f"{len(members):,} members (at most {MAX_MEMBERS:,})")
        _check_size(sum(member.file_size for member in members))
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except ArrayFileError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, NotImplementedError) as error:
        raise ArrayFileError(f"not a readable .npz ({first_line(error)})") from None
    broken = sorted(key for key, value in arrays.items() if not isinstance(value, np.ndarray))
    if broken:
        raise ArrayFileError(f"member(s) {broken} are not NumPy arrays (empty or damaged)")
    return arrays


def read_npy(path: Path) -> np.ndarray:
    """The one array of an .npy file."""
    path = Path(path)
    try:
        _check_size(path.stat().st_size)
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ArrayFileError(f"not a readable .npy ({first_line(error)})") from None
    if not isinstance(array, np.ndarray):
        raise ArrayFileError("not an .npy file (it holds several arrays: an .npz)")
    return array


def _check_size(declared: int) -> None:
    import psutil

    available = psutil.virtual_memory().available
    if declared > MEMORY_SHARE * available:
        raise ArrayFileError(f"its arrays take {declared / 2**30:,.1f} GiB, more than half of the "
                             f"{available / 2**30:,.1f} GiB of memory free here")


def _is_npy(path: Path) -> bool:
    try:
        with open(path, "rb") as stream:
            return stream.read(6) == b"\x93NUMPY"
    except OSError:
        return False


