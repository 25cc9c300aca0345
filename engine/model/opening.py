"""Open a model file, or a `file.py:function` factory, into a `ModelHandle`: the format decides the reader."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from engine.errors import (
    CorruptModelError,
    ModelLoadError,
    ModelNotFoundError,
    UnsupportedModelError,
    first_line,
)
from engine.model import onnx_loader, torch_loader
from engine.model.handle import ModelFormat, ModelHandle

_FACTORY_SPEC = re.compile(r"^(?P<file>.+\.py):(?P<function>[A-Za-z_]\w*)$")
# torch.save's legacy (non-zip) format starts with this pickled magic number.
_LEGACY_TORCH_SAVE_MAGIC = bytes.fromhex("80028a0a6cfc9c46f9206aa85019")
_PICKLE_PROTOCOL_MARK = 0x80
_TORCH_SUFFIXES = {".pt", ".pth", ".bin", ".pkl", ".ckpt"}


def load_model(location: str | Path, *, trust_pickle: bool = False) -> ModelHandle:
    """Open a model file, or a factory given as `path/to/file.py:function`.

    `trust_pickle` allows full unpickling of `torch.save` files holding a whole
    `nn.Module`; without it they are refused, because unpickling runs code.
    """
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


def _is_zip(path: Path) -> bool:
    try:
        return zipfile.is_zipfile(path)
    except zipfile.BadZipFile as error:  # a zip end record it cannot follow (multi-disk, bad offsets)
        raise ModelLoadError(f"{path}: damaged zip archive ({error})") from error


def detect_format(path: Path) -> ModelFormat:
    """Tell the format from the file's content, falling back on its suffix."""
    if _is_zip(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except Exception as error:  # noqa: BLE001 - a damaged directory fails in zipfile many ways (BadZipFile,
            # UnicodeDecodeError on names, NotImplementedError on versions, struct.error...): all "damaged"
            raise ModelLoadError(f"{path}: damaged zip archive ({type(error).__name__}: {first_line(error)})") from error
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
