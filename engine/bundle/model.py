"""The model inside a bundle, in the format the user chose, and what it takes and gives.

ONNX models keep their weights beside them under a fixed name (`model.onnx.data`), whatever the source
called its external data, so the bundle never refers to a file outside itself. PyTorch sources become
TorchScript (traced on the sample inputs) or a `torch.export` program; a file already in the chosen format
is copied byte for byte, so what was benchmarked is what ships.
"""

from __future__ import annotations

import shutil
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.bundle.files import BundleCancelled, BundleError
from engine.device.discovery import torch_installed
from engine.errors import EngineError, first_line
from engine.model.handle import ModelFormat, ModelHandle

FORMATS = ("onnx", "torchscript", "pt2")
MODEL_FILE_NAMES = {"onnx": "model.onnx", "torchscript": "model.pt", "pt2": "model.pt2"}
EXTERNAL_DATA_SUFFIX = ".data"
_SAME_FORMAT = {"onnx": ModelFormat.ONNX, "torchscript": ModelFormat.TORCHSCRIPT, "pt2": ModelFormat.TORCH_EXPORT}


@dataclass(frozen=True)
class PackagedModel:
    files: tuple[str, ...]  # names inside the bundle, the model file first
    format: str
    backend: str
    notes: tuple[str, ...]

    @property
    def model_file(self) -> str:
        return self.files[0]


def check_format(handle: ModelHandle, bundle_format: str) -> None:
    """Refuse a conversion the bundle cannot do, before any work."""
    if bundle_format not in FORMATS:
        raise BundleError(f"unknown bundle format '{bundle_format}'; choose one of {', '.join(FORMATS)}")
    if handle.format is ModelFormat.ONNX and bundle_format != "onnx":
        raise BundleError(f"{handle.name} is ONNX, which cannot become {bundle_format}: export it as onnx")
    if (bundle_format != "onnx" or handle.format is not ModelFormat.ONNX) and not torch_installed():
        raise BundleError(f"exporting {handle.name} as {bundle_format} needs PyTorch, which is not installed here "
                          "(the desktop build leaves it out): use a pip-installed studio")
    if bundle_format == "pt2" and handle.format is ModelFormat.TORCHSCRIPT:
        raise BundleError(f"{handle.name} is TorchScript, which torch.export cannot read: export it as torchscript, "
                          "or open the original module (a factory file.py:function) to export pt2")


def write_onnx(handle: ModelHandle, folder: Path) -> PackagedModel:
    """Copy an ONNX model into the bundle, re-homing any external data under the bundle's own name."""
    name = MODEL_FILE_NAMES["onnx"]
    if len(handle.files) <= 1:
        shutil.copyfile(handle.path, folder / name)
        return PackagedModel((name,), "onnx", "onnxruntime", ())
    import onnx

    try:
        model = onnx.load(str(handle.path), load_external_data=True)
    except (onnx.checker.ValidationError, ValueError, FileNotFoundError) as error:
        raise BundleError(f"{handle.path}: could not read its external weights ({first_line(error)})") from error
    data_name = name + EXTERNAL_DATA_SUFFIX
    onnx.save_model(model, str(folder / name), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data_name, size_threshold=0)
    files = (name, data_name) if (folder / data_name).is_file() else (name,)
    return PackagedModel(files, "onnx", "onnxruntime", ("external weights stored as " + data_name,))


def write_torch(handle: ModelHandle, bundle_format: str, folder: Path, example: Mapping[str, np.ndarray],
                cancel: threading.Event) -> PackagedModel:
    """TorchScript or torch.export from a PyTorch source; the source file itself when it already is that format."""
    name = MODEL_FILE_NAMES[bundle_format]
    if handle.format is _SAME_FORMAT[bundle_format]:
        shutil.copyfile(handle.path, folder / name)
        return PackagedModel((name,), bundle_format, "torch", ())
    import torch

    from engine.model.torch_loader import load_module

    module = load_module(handle.path, handle.format, trust_pickle=handle.trusted, function=handle.factory_function)
    arguments = tuple(torch.from_numpy(np.ascontiguousarray(example[spec.name])) for spec in handle.inputs)
    if cancel.is_set():
        raise BundleCancelled("export cancelled; nothing was written")
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if bundle_format == "torchscript":
                with torch.no_grad():
                    traced = torch.jit.trace(module.eval(), arguments, check_trace=False)
                torch.jit.save(traced, str(folder / name))
                notes.append("traced on the sample inputs: control flow that depends on values is fixed to that path")
            else:
                program = torch.export.export(module.eval(), arguments)
                torch.export.save(program, str(folder / name))
                notes.append("exported with torch.export at the sample inputs' shapes")
        except (RuntimeError, TypeError, ValueError, AssertionError, EngineError) as error:
            raise BundleError(f"could not convert {handle.name} to {bundle_format}: {first_line(error)}") from error
    notes += sorted({f"converter: {first_line(w.message)}" for w in caught})
    return PackagedModel((name,), bundle_format, "torch", tuple(notes))
