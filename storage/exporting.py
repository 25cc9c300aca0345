"""Writing a run to CSV or JSON, atomically: a crash or a full disk never leaves a half-written file behind.

The data goes to a temporary file next to the destination, is flushed to disk, and only then renamed over the
destination (an atomic step on the same file system). Works on `RunData` from the database or from a writer's
in-memory snapshot, so a run that could not be saved can still be exported.

CSV is one tidy table, one row per sample: `kind,timestamp_ns,metric,device,value,batch`, where latency rows have
kind `latency`, metric `latency_ns` and the run's device, and telemetry rows leave `batch` empty.
JSON holds the run record, the latency columns and one object per telemetry series.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from core.atomic_files import write_bytes_atomically
from storage.errors import ExportError, StorageError
from storage.failures import translate_os_error
from storage.records import ExportedFile, RunData

FORMATS = ("csv", "json")
JSON_FORMAT_NAME = "autoglm-studio-run"
JSON_FORMAT_VERSION = 1
CSV_HEADER = "kind,timestamp_ns,metric,device,value,batch\n"
_ROWS_PER_WRITE = 50_000


def export_run_data(data: RunData, path: str | os.PathLike[str], file_format: str) -> ExportedFile:
    """Writes `data` to `path` in `file_format` (csv or json) and returns what was written, with its sha256."""
    if file_format not in FORMATS:
        raise ExportError(f"Cannot export to {file_format!r}: choose one of {', '.join(FORMATS)}.")
    destination = Path(path).expanduser().absolute()
    pieces = _csv_pieces(data) if file_format == "csv" else _json_pieces(data)
    digest, size = _write_atomically(destination, pieces)
    return ExportedFile(data.record.id, str(destination), file_format, digest, size)


def _write_atomically(destination: Path, pieces: Iterator[str]) -> tuple[str, int]:
    where = f"exporting to {destination}"
    if destination.is_dir():
        raise ExportError(f"{destination} is a folder; give a file name to export to.")
    digest = hashlib.sha256()
    size = 0

    def write(stream) -> None:
        nonlocal size
        for piece in pieces:
            size += _write(stream, piece.encode("utf-8"), digest)

    try:
        write_bytes_atomically(destination, write)
    except OSError as error:
        typed: StorageError = translate_os_error(error, where=where)
        raise ExportError(f"{typed} Nothing was written to {destination}.") from error
    return digest.hexdigest(), size


def _write(stream: IO[bytes], data: bytes, digest: Any) -> int:
    stream.write(data)
    digest.update(data)
    return len(data)


def _csv_pieces(data: RunData) -> Iterator[str]:
    yield CSV_HEADER
    device = _csv_field(data.record.device)
    latency = data.latency
    for start in range(0, len(latency), _ROWS_PER_WRITE):
        part = slice(start, start + _ROWS_PER_WRITE)
        yield "".join(
            f"latency,{t},latency_ns,{device},{v},{b}\n"
            for t, v, b in zip(latency.timestamps_ns[part].tolist(), latency.latencies_ns[part].tolist(),
                               latency.batches[part].tolist(), strict=True))
    for series in data.telemetry:
        prefix = f"{_csv_field(series.metric)},{_csv_field(series.device)}"
        for start in range(0, series.timestamps_ns.size, _ROWS_PER_WRITE):
            part = slice(start, start + _ROWS_PER_WRITE)
            yield "".join(f"telemetry,{t},{prefix},{_number(v)},\n"
                          for t, v in zip(series.timestamps_ns[part].tolist(), series.values[part].tolist(),
                                          strict=True))


def _json_pieces(data: RunData) -> Iterator[str]:
    document = {
        "format": JSON_FORMAT_NAME,
        "version": JSON_FORMAT_VERSION,
        "run": data.record.to_dict(),
        "latency": {
            "timestamp_ns": data.latency.timestamps_ns.tolist(),
            "latency_ns": data.latency.latencies_ns.tolist(),
            "batch": data.latency.batches.tolist(),
        },
        "telemetry": [
            {"metric": series.metric, "device": series.device, "timestamp_ns": series.timestamps_ns.tolist(),
             "values": _finite_or_none(series.values)}
            for series in data.telemetry
        ],
    }
    # One C-encoded string (tens of MB for a million samples) is far faster than iterencode's tiny pieces.
    yield json.dumps(document, allow_nan=False, separators=(",", ":"))


def _finite_or_none(values: np.ndarray) -> list[float | None]:
    """JSON has no NaN: a reading that could not be taken becomes null rather than invalid JSON or a fake 0."""
    if np.isfinite(values).all():
        return values.tolist()
    return [value if math.isfinite(value) else None for value in values.tolist()]


def _number(value: float) -> str:
    return repr(value) if math.isfinite(value) else ""


def _csv_field(text: str) -> str:
    if any(character in text for character in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text
