"""Packs sample arrays into compact bytes for chunk rows, and back.

Codec 1: little-endian fixed-width values, optionally delta-encoded (timestamps grow steadily, so their deltas
are small), byte-shuffled (all first bytes, then all second bytes, ... as Blosc does, so the mostly-zero high
bytes form long runs) and zlib-compressed at level 1 (fast enough to pack a million samples in tens of
milliseconds). The codec id is stored with each chunk so a later version can change the layout without
rewriting old runs.
"""

from __future__ import annotations

import zlib

import numpy as np

from storage.errors import DamagedSamplesError

CODEC_SHUFFLE_ZLIB = 1
CURRENT_CODEC = CODEC_SHUFFLE_ZLIB

INT64 = np.dtype("<i8")
INT32 = np.dtype("<i4")
FLOAT64 = np.dtype("<f8")


def pack(values: np.ndarray, dtype: np.dtype, *, delta: bool = False) -> bytes:
    """Bytes for `values` as `dtype` (codec 1). Delta encoding is exact for integers (wraps like int64 math)."""
    array = np.ascontiguousarray(values, dtype=dtype)
    if delta:
        if array.dtype.kind != "i":
            raise TypeError("delta encoding is only exact for integer arrays")
        array = np.diff(array, prepend=array.dtype.type(0))
    shuffled = array.view(np.uint8).reshape(-1, dtype.itemsize).T
    return zlib.compress(np.ascontiguousarray(shuffled).tobytes(), 1)


def unpack(blob: bytes, count: int, dtype: np.dtype, *, delta: bool = False, codec: int = CODEC_SHUFFLE_ZLIB
           ) -> np.ndarray:
    """The `count` values that `pack` stored in `blob`, in native byte order; DamagedSamplesError when the chunk
    cannot hold them (never more than `count` values are decompressed, whatever the blob says)."""
    if codec != CODEC_SHUFFLE_ZLIB:
        raise DamagedSamplesError(f"unknown sample codec {codec}: this database was written by a newer Studio")
    expected = count * dtype.itemsize
    if count < 0:
        raise DamagedSamplesError(f"a chunk claims {count} samples")
    try:
        inflater = zlib.decompressobj()
        data = inflater.decompress(blob, expected + 1)
    except (zlib.error, TypeError) as error:
        raise DamagedSamplesError(f"a chunk of samples is damaged ({error})") from None
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size != expected or not inflater.eof:
        held = f"more than {expected}" if raw.size > expected else f"{raw.size}"
        raise DamagedSamplesError(f"a chunk holds {held} bytes, expected {count} values of {dtype.itemsize} bytes")
    array = np.ascontiguousarray(raw.reshape(dtype.itemsize, count).T).view(dtype).reshape(count)
    if delta:
        array = np.cumsum(array, dtype=dtype)
    return array.astype(dtype.newbyteorder("="), copy=False)
