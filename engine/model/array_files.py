"""NumPy files a user hands us (.npz archives of named arrays, .npy single arrays), read within limits.

An .npz is a zip: its member count and the uncompressed size its members declare are checked before anything is
decompressed, so a small archive cannot expand into more memory than the machine has free. Pickled objects are
never loaded. Every way reading can fail is one ArrayFileError saying why in a few words; callers put it in
their own words ("calibration data X: …").
"""

from __future__ import annotations

import errno
import math
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.errors import first_line
from engine.model.memory_room import shortfall

MAX_MEMBERS = 4096


class ArrayFileError(ValueError):
    """Not a readable .npz or .npy within the limits; the message says why."""


def read_npz(path: Path, check_names: Callable[[list[str]], None] | None = None) -> dict[str, np.ndarray]:
    """Every array of an .npz archive, by name; FileNotFoundError when there is no such file. `check_names` sees
    the arrays' names before anything is decompressed (and may raise to stop there)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
    try:
        is_zip = zipfile.is_zipfile(path)
    except (zipfile.BadZipFile, OSError) as error:  # an end record it cannot follow (multi-disk, bad offsets)
        raise ArrayFileError(f"not a readable .npz ({first_line(error)})") from None
    if not is_zip:
        hint = " (an .npy holds one unnamed array: save it with np.savez(path, NAME=array))" \
            if _is_npy(path) else ""
        raise ArrayFileError(f"not a readable .npz archive{hint}")
    members = _guarded(lambda: _members(path))
    if check_names is not None:
        check_names([_array_name(member) for member in members])  # before anything is decompressed
    return _guarded(lambda: _read_members(path, members))


def _members(path: Path) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise ArrayFileError(f"{len(members):,} members (at most {MAX_MEMBERS:,})")
    _check_size(sum(member.file_size for member in members))
    for member in members:
        _array_name(member)
    return members


def _read_members(path: Path, members: list[zipfile.ZipInfo]) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        return {_array_name(member): _read_member(archive, member) for member in members}


def _guarded(read):
    """`read()`, with every way damaged archive bytes fail (zipfile, zlib, tokenize, ast...) as ArrayFileError."""
    try:
        return read()
    except (ArrayFileError, OSError):
        raise
    except Exception as error:  # noqa: BLE001 - see the docstring
        raise ArrayFileError(f"not a readable .npz ({type(error).__name__}: {first_line(error)})") from None


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


def _array_name(member: zipfile.ZipInfo) -> str:
    if not member.filename.endswith(".npy"):
        raise ArrayFileError(f"member {member.filename!r} is not an .npy array")
    return member.filename[: -len(".npy")]


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> np.ndarray:
    """One member, once its header shows an array of plain values that the member's bytes can hold."""
    with archive.open(member) as stream:
        version = np.lib.format.read_magic(stream)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ArrayFileError(f"member {member.filename!r} is .npy format {version}, which is not read here")
        shape, _, dtype = read_header(stream, max_header_size=10_000)
    if dtype.hasobject:
        raise ArrayFileError(f"member {member.filename!r} holds Python objects, which are never unpickled")
    needed = math.prod(shape) * dtype.itemsize
    if needed > member.file_size:
        raise ArrayFileError(f"member {member.filename!r} declares {needed:,} bytes of values but holds "
                             f"{member.file_size:,}")
    with archive.open(member) as stream:
        return np.lib.format.read_array(stream, allow_pickle=False)


def _check_size(declared: int) -> None:
    problem = shortfall(declared)
    if problem:
        raise ArrayFileError(f"its arrays {problem}")


def _is_npy(path: Path) -> bool:
    try:
        with open(path, "rb") as stream:
            return stream.read(6) == b"\x93NUMPY"
    except OSError:
        return False


