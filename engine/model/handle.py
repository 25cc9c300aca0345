"""`ModelHandle`: what a model file is, what it takes, what it gives.

The handle is plain data. Backends load the model again from `handle.path` when
they prepare a session, so that load time is part of the measured cold start.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from engine.model.tensors import TensorSpec


class ModelFormat(StrEnum):
    ONNX = "onnx"
    TORCHSCRIPT = "torchscript"
    TORCH_EXPORT = "torch_export"
    TORCH_FACTORY = "torch_factory"
    TORCH_PICKLE = "torch_pickle"

    @property
    def default_backend(self) -> str:
        return "onnxruntime" if self is ModelFormat.ONNX else "torch"


@dataclass(frozen=True)
class ModelHandle:
    path: Path
    format: ModelFormat
    sha256: str  # covers the model file and any external data files
    size_bytes: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    parameter_count: int
    op_histogram: dict[str, int]
    files: tuple[Path, ...] = ()
    factory_function: str | None = None
    trusted: bool = False
    # Upper bounds (exclusive) for integer index inputs, e.g. an embedding's vocabulary.
    index_bounds: dict[str, int] = field(default_factory=dict)
    # Allowed (lower, upper or None) sizes of symbolic dims, where the model records them.
    dim_bounds: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    # The model file's own key/value metadata (ONNX metadata_props), e.g. Ultralytics' imgsz.
    metadata: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.path.name

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "name": self.name,
            "format": self.format.value,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "inputs": [spec.to_dict() for spec in self.inputs],
            "outputs": [spec.to_dict() for spec in self.outputs],
            "parameter_count": self.parameter_count,
            "op_histogram": dict(sorted(self.op_histogram.items(), key=lambda kv: (-kv[1], kv[0]))),
            "files": [str(p) for p in self.files],
            "factory_function": self.factory_function,
            "metadata": dict(self.metadata),
            "notes": list(self.notes),
        }


def hash_files(paths: list[Path]) -> tuple[str, int]:
    """sha256 over the files in order, and their total size."""
    digest = hashlib.sha256()
    total = 0
    for path in paths:
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
                total += len(chunk)
    return digest.hexdigest(), total
