"""Every feed the optimizer needs, built one way: the example for export, calibration data, fidelity inputs.

All come from the user's input settings (`--shape`, `--dim`, `--batch`, `--inputs`),
so a model with dynamic dims is exported, calibrated and compared at the sizes
the user asked for, never at a guess that differs between steps. Calibration
and fidelity use disjoint seeds, so the fidelity report never grades a model on
the very inputs it was calibrated with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.model.handle import ModelFormat, ModelHandle, hash_files
from engine.model.inputs import InputRequest, PreparedInputs, prepare_inputs
from engine.model.opening import load_model
from engine.model.tensors import TensorSpec
from engine.optimize.passes.calibration import load_calibration_samples
from engine.optimize.settings import CalibrationSettings

CALIBRATION_SEED_OFFSET = 1_000_000


@dataclass(frozen=True)
class FeedSpecs:
    """The input signature feeds are built for, with the vocabulary bounds of token inputs."""

    specs: tuple[TensorSpec, ...]
    index_bounds: dict

    @classmethod
    def of_handle(cls, handle: ModelHandle, *, loose_dtypes: bool = False) -> FeedSpecs:
        specs = handle.inputs
        if loose_dtypes:  # a PyTorch module does not record dtypes: take them from the user's .npz
            specs = tuple(dataclasses.replace(spec, dtype="unknown") for spec in specs)
        return cls(tuple(specs), dict(handle.index_bounds))

    @classmethod
    def of_onnx(cls, path: Path) -> FeedSpecs:
        return _onnx_feed_specs(Path(path).resolve(), Path(path).stat().st_mtime_ns)


@lru_cache(maxsize=64)
def _onnx_feed_specs(path: Path, _mtime_ns: int) -> FeedSpecs:
    return FeedSpecs.of_handle(load_model(path))


@dataclass(frozen=True)
class ModelInputs:
    request: InputRequest
    seed: int
    calibration: CalibrationSettings

    def feed(self, specs: FeedSpecs, index: int = 0) -> PreparedInputs:
        """Input set number `index`: the user's .npz for 0 when given, else seeded synthetic data."""
        if self.request.npz is not None:
            first = prepare_inputs(specs.specs, self.request, index_bounds=specs.index_bounds)
            if index == 0:
                return first
            shapes = {name: tuple(array.shape) for name, array in first.feed.items()}
            request = InputRequest(shapes=shapes, seed=self.seed + index)
        else:
            request = dataclasses.replace(self.request, seed=self.seed + index)
        return prepare_inputs(specs.specs, request, index_bounds=specs.index_bounds)

    def feeds(self, specs: FeedSpecs, count: int, *, offset: int = 0) -> list[dict[str, np.ndarray]]:
        return [self.feed(specs, offset + i).feed for i in range(count)]

    def calibration_samples(self, specs: FeedSpecs, count: int | None = None) -> Sequence[dict[str, np.ndarray]]:
        """Calibration feeds: from the recipe's source, or synthetic with seeds disjoint from fidelity's."""
        count = count or self.calibration.samples
        if self.calibration.source is None:
            return _LazyFeeds(self, specs, count)
        return load_calibration_samples(Path(self.calibration.source), specs.specs, count, self.feed(specs).feed)

    def describe_calibration(self, count: int | None = None) -> str:
        count = count or self.calibration.samples
        if self.calibration.source is None:
            return f"{count} synthetic samples (seeds from {self.seed + CALIBRATION_SEED_OFFSET})"
        return f"up to {count} samples from {self.calibration.source}"

    def to_key(self) -> dict:
        """What the inputs contribute to a cache key."""
        return {
            "shapes": {k: list(v) for k, v in sorted(self.request.shapes.items())},
            "dims": dict(sorted(self.request.dims.items())),
            "batch": self.request.batch,
            "npz": _file_digest(self.request.npz) if self.request.npz else None,
            "seed": self.seed,
            "calibration": self.calibration.to_dict(),
            "calibration_digest": _source_digest(self.calibration.source),
        }


class _LazyFeeds(Sequence):
    """Synthetic calibration feeds made on demand, so a cancel does not wait for all of them."""

    def __init__(self, inputs: ModelInputs, specs: FeedSpecs, count: int):
        self._inputs, self._specs, self._count = inputs, specs, count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if not 0 <= index < self._count:
            raise IndexError(index)
        return self._inputs.feed(self._specs, CALIBRATION_SEED_OFFSET + index).feed

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return (self[i] for i in range(self._count))


def torch_feed_specs(handle: ModelHandle, request: InputRequest) -> FeedSpecs:
    loose = handle.format is not ModelFormat.ONNX and request.npz is not None
    return FeedSpecs.of_handle(handle, loose_dtypes=loose)


def _file_digest(path: Path) -> str:
    return hash_files([Path(path)])[0]


def _source_digest(source: str | None) -> str | None:
    if source is None:
        return None
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".npy", ".npz") and p.is_file())
        return _combined([*(p.name for p in files), *(_file_digest(p) for p in files)])
    return _file_digest(path) if path.is_file() else None


def _combined(parts: list[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
