"""Calibration data from the user's files, checked against the model before any calibration starts.

Accepted sources:
  * one `.npz` whose keys are the model's input names. An array with one axis more
    than the input holds one sample per entry of its first axis; an array of the
    input's own rank is split along its first (batch) axis into samples of batch 1;
  * a folder of `.npz` files (one sample each, keys = input names) or, for a model
    with a single input, `.npy` files (one sample each), taken in name order;
  * a folder of images, for a model with one image input, or a `.txt` file with one
    text a line and a tokenizer, for a text model: read by engine.model.sample_data at
    the shapes of the reference feed, with the options in `SampleOptions`.

A wrong key, rank, size or dtype is reported with the file and input at fault,
because ONNX Runtime would otherwise fail deep inside calibration with a message
that names neither.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.progress import Progress
from engine.errors import CalibrationDataError, InputError, OptimizationCancelled, first_line
from engine.model.array_files import ArrayFileError, read_npy, read_npz
from engine.model.sample_data import SampleOptions, load_samples, sample_kind
from engine.model.tensors import TensorSpec

Feed = dict[str, np.ndarray]


def load_calibration_samples(source: Path, specs: Sequence[TensorSpec], count: int, reference: Feed,
                             options: SampleOptions | None = None) -> list[Feed]:
    """Up to `count` validated samples from a .npz file, a folder or a text file.

    `reference` gives ranks the specs lack, and the shapes images and texts are brought to.
    """
    if not source.exists():
        raise CalibrationDataError(f"calibration data {source}: no such file or folder")
    if sample_kind(source) is not None and not _array_files(source):
        shapes = {name: tuple(array.shape) for name, array in reference.items()}
        try:
            samples = load_samples(source, specs, shapes, options or SampleOptions(), count)
        except InputError as error:
            raise CalibrationDataError(f"calibration data {error}") from error
    elif source.is_dir():
        samples = _folder_samples(source, specs, count)
    elif source.suffix == ".npz":
        samples = _split_npz(source, _read_npz(source), specs, reference, count)
    else:
        raise CalibrationDataError(f"calibration data {source}: expected a .npz file, a folder of .npy/.npz files "
                                   "or images, or a .txt file")
    if not samples:
        raise CalibrationDataError(f"calibration data {source}: holds no samples")
    for number, sample in enumerate(samples):
        _check_sample(source, number, sample, specs, reference)
    return samples


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        return read_npz(path)
    except (ArrayFileError, OSError) as error:
        raise CalibrationDataError(f"calibration data {path}: {first_line(error)}") from error


def _check_keys(path: Path, keys, specs: Sequence[TensorSpec]) -> None:
    expected = [spec.name for spec in specs]
    missing = [name for name in expected if name not in keys]
    extra = sorted(set(keys) - set(expected))
    if missing or extra:
        raise CalibrationDataError(
            f"calibration data {path}: keys must be the model's input names {expected}"
            + (f"; missing {missing}" if missing else "") + (f"; unexpected {extra}" if extra else "")
        )


def _split_npz(path: Path, arrays: dict[str, np.ndarray], specs, reference: Feed, count: int) -> list[Feed]:
    _check_keys(path, arrays, specs)
    counts = {}
    stacked = {}
    for spec in specs:
        array, rank = arrays[spec.name], _rank(spec, reference)
        if array.ndim == rank + 1:
            stacked[spec.name] = True
        elif array.ndim == rank and rank >= 1:
            stacked[spec.name] = False
        else:
            raise CalibrationDataError(
                f"calibration data {path}: input '{spec.name}' has rank {array.ndim}; the model takes rank {rank} "
                f"(give rank {rank} to split along the batch axis, or {rank + 1} with samples on the first axis)"
            )
        counts[spec.name] = array.shape[0]
    if len(set(counts.values())) > 1:
        raise CalibrationDataError(f"calibration data {path}: inputs hold different numbers of samples {counts}")
    total = min(next(iter(counts.values())), count)
    return [
        {name: np.ascontiguousarray(arrays[name][i] if stacked[name] else arrays[name][i:i + 1]) for name in arrays}
        for i in range(total)
    ]


def _array_files(source: Path) -> list[Path]:
    if not source.is_dir():
        return []
    return sorted(p for p in source.iterdir() if p.is_file() and p.suffix in (".npy", ".npz"))


def _folder_samples(folder: Path, specs: Sequence[TensorSpec], count: int) -> list[Feed]:
    files = _array_files(folder)
    if not files:
        raise CalibrationDataError(f"calibration data {folder}: the folder holds no .npy, .npz or image files")
    samples = []
    for path in files[:count]:
        if path.suffix == ".npz":
            arrays = _read_npz(path)
            _check_keys(path, arrays, specs)
            samples.append({spec.name: np.ascontiguousarray(arrays[spec.name]) for spec in specs})
            continue
        if len(specs) != 1:
            names = [spec.name for spec in specs]
            raise CalibrationDataError(
                f"calibration data {path}: a .npy file holds one array, but the model has inputs {names}; "
                "use .npz files keyed by input name"
            )
        try:
            array = read_npy(path)
        except (ArrayFileError, OSError) as error:
            raise CalibrationDataError(f"calibration data {path}: {first_line(error)}") from error
        samples.append({specs[0].name: np.ascontiguousarray(array)})
    return samples


def _rank(spec: TensorSpec, reference: Feed) -> int:
    if spec.shape is not None:
        return len(spec.shape)
    return reference[spec.name].ndim


def _check_sample(source: Path, number: int, sample: Feed, specs: Sequence[TensorSpec], reference: Feed) -> None:
    for spec in specs:
        array = sample[spec.name]
        where = f"calibration data {source} (sample {number}): input '{spec.name}'"
        expected_dtype = spec.dtype if spec.dtype != "unknown" else None
        if expected_dtype and array.dtype != np.dtype(expected_dtype):
            raise CalibrationDataError(f"{where} holds {array.dtype}; the model expects {expected_dtype}")
        if array.dtype.kind not in "biuf":
            raise CalibrationDataError(f"{where} holds {array.dtype}, which no model input takes")
        shape = spec.shape
        if shape is None:
            if array.ndim != reference[spec.name].ndim:
                rank = reference[spec.name].ndim
                raise CalibrationDataError(f"{where} has rank {array.ndim}; the inputs have rank {rank}")
            continue
        expected = "×".join("?" if d is None else str(d) for d in shape)
        given = "×".join(str(d) for d in array.shape)
        if array.ndim != len(shape):
            raise CalibrationDataError(f"{where} has shape {given}; the model expects {expected}")
        for axis, (size, dim) in enumerate(zip(array.shape, shape)):
            if isinstance(dim, int) and dim != size:
                raise CalibrationDataError(
                    f"{where} has shape {given}; the model expects {expected} (axis {axis} must be {dim})"
                )


def calibration_reader(samples: Sequence[Feed], cancel: threading.Event, progress: Progress,
                       label: str = "calibration"):
    """An ONNX Runtime CalibrationDataReader that stops on cancel and reports each sample."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.index = 0
            self.end = len(samples)

        def get_next(self) -> Feed | None:
            if cancel.is_set():
                raise OptimizationCancelled("optimization cancelled during calibration; nothing was written")
            if self.index >= self.end:
                return None
            feed = samples[self.index]
            self.index += 1
            progress(self.index / max(self.end, 1), f"{label}: sample {self.index}/{self.end}")
            return feed

        def __len__(self) -> int:
            return len(samples)

        def set_range(self, start_index: int, end_index: int) -> None:
            self.index, self.end = start_index, min(end_index, len(samples))

        def rewind(self) -> None:
            self.index, self.end = 0, len(samples)

    return _Reader()
