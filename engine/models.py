"""Open a model file into a `ModelHandle`: what it is, what it takes, what it gives.

The handle is plain data. Backends load the model again from `handle.path` when
they prepare a session, so that load time is part of the measured cold start.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from engine.errors import CorruptModelError, ModelLoadError, ModelNotFoundError, UnsupportedModelError
from engine.tensors import TensorSpec

_FACTORY_SPEC = re.compile(r"^(?P<file>.+\.py):(?P<function>[A-Za-z_]\w*)$")
# torch.save's legacy (non-zip) format starts with this pickled magic number.
_LEGACY_TORCH_SAVE_MAGIC = bytes.fromhex("80028a0a6cfc9c46f9206aa85019")
_PICKLE_PROTOCOL_MARK = 0x80
_TORCH_SUFFIXES = {".pt", ".pth", ".bin", ".pkl", ".ckpt"}


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
            "notes": list(self.notes),
        }


def load_model(location: str | Path, *, trust_pickle: bool = False) -> ModelHandle:
    """Open a model file, or a factory given as `path/to/file.py:function`.

    `trust_pickle` allows full unpickling of `torch.save` files holding a whole
    `nn.Module`; without it they are refused, because unpickling runs code.
    """
    from engine import onnx_loader, torch_loader

    text = str(location)
    factory = _FACTORY_SPEC.match(text)
    if factory:
        path = _existing_file(Path(factory["file"]))
        return torch_loader.load_factory(path, factory["function"])

    path = _existing_file(Path(text))
    model_format = detect_format(path)
    if model_format is ModelFormat.ONNX:
        return onnx_loader.load_onnx(path)
    return torch_loader.load_torch_file(path, model_format, trust_pickle=trust_pickle)


def detect_format(path: Path) -> ModelFormat:
    """Tell the format from the file's content, falling back on its suffix."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as error:
            raise ModelLoadError(f"{path}: damaged zip archive ({error})") from error
        if any(name.endswith("/archive_format") for name in names):
            return ModelFormat.TORCH_EXPORT
        if any(name.endswith("/constants.pkl") for name in names) and any("/code/" in name for name in names):
            return ModelFormat.TORCHSCRIPT
        if any(name.endswith("data.pkl") for name in names):
            return ModelFormat.TORCH_PICKLE
        raise UnsupportedModelError(f"{path}: a zip archive that is neither a TorchScript, torch.export nor torch.save file")
    with path.open("rb") as stream:
        head = stream.read(len(_LEGACY_TORCH_SAVE_MAGIC))
    if path.suffix.lower() == ".onnx":
        return ModelFormat.ONNX
    if head == _LEGACY_TORCH_SAVE_MAGIC:
        return ModelFormat.TORCH_PICKLE
    if path.suffix.lower() in _TORCH_SUFFIXES and head[:1] == bytes([_PICKLE_PROTOCOL_MARK]):
        raise CorruptModelError(f"{path}: a pickle but not a torch.save file (damaged, or saved with plain pickle)")
    raise UnsupportedModelError(
        f"{path}: unknown model format; the studio opens .onnx, TorchScript (.pt), torch.export (.pt2) "
        "and factories given as file.py:function"
    )


def _existing_file(path: Path) -> Path:
    if not path.exists():
        raise ModelNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise UnsupportedModelError(f"{path}: is a directory; give the model file itself")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"{path}: the file is empty")
    return path.resolve()


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
