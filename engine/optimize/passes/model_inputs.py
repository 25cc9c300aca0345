"""Every feed the optimizer needs, built one way: the example for export, calibration data, fidelity inputs.

All come from the user's input settings (`--shape`, `--dim`, `--batch`, `--inputs`),
so a model with dynamic dims is exported, calibrated and compared at the sizes
the user asked for, never at a guess that differs between steps. Calibration
and fidelity never share inputs: synthetic feeds use disjoint seeds, and the
user's calibration samples are split (SplitSamples), so a model is graded on
real data it was not calibrated with whenever real data was given.
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
from engine.model.sample_data import SampleOptions, sample_files, sample_kind
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
        """Calibration feeds: the user's samples less those held out for fidelity, or synthetic with seeds
        disjoint from fidelity's."""
        count = count or self.calibration.samples
        if self.calibration.source is None:
            return _LazyFeeds(self, specs, count)
        return self._split(specs).calibration[:count]

    def fidelity_feeds(self, specs: FeedSpecs, count: int) -> list[dict[str, np.ndarray]]:
        """Inputs to grade a model on: up to `count` of the user's held-out samples when calibration data was
        given (real data, never the samples it was calibrated with), else seeded synthetic feeds."""
        if self.calibration.source is None:
            return self.feeds(specs, count)
        return self._split(specs).evaluation[:count]

    @property
    def fidelity_is_synthetic(self) -> bool:
        return self.calibration.source is None

    def describe_calibration(self, count: int | None = None) -> str:
        count = count or self.calibration.samples
        if self.calibration.source is None:
            return f"{count} synthetic samples (seeds from {self.seed + CALIBRATION_SEED_OFFSET})"
        return f"up to {count} samples from {self.calibration.source}, {HOLD_OUT_RULE}"

    def describe_fidelity_data(self, count: int) -> str:
        if self.calibration.source is None:
            return f"{count} synthetic input set(s) (seeds from {self.seed}): not real data"
        return (f"up to {count} real sample(s) from {self.calibration.source}, held out from calibration "
                f"({HOLD_OUT_RULE}; a source of one sample is used for both, not kept apart)")

    def _split(self, specs: FeedSpecs) -> SplitSamples:
        samples = load_calibration_samples(Path(self.calibration.source), specs.specs, self.calibration.samples,
                                           self.feed(specs).feed, self.calibration.sample_options())
        return SplitSamples.of(samples)

    def to_key(self) -> dict:
        """What the inputs contribute to a cache key."""
        return {
            "shapes": {k: list(v) for k, v in sorted(self.request.shapes.items())},
            "dims": dict(sorted(self.request.dims.items())),
            "batch": self.request.batch,
            "npz": _file_digest(self.request.npz) if self.request.npz else None,
            "seed": self.seed,
            "calibration": self.calibration.to_dict(),
            "calibration_digest": _source_digest(self.calibration.source, self.calibration.sample_options()),
        }


HOLD_OUT_RULE = "the last quarter of them (at least one) held out for fidelity"


@dataclass(frozen=True)
class SplitSamples:
    """The user's samples in two disjoint sets: the last max(1, n // 4) grade the model, the rest calibrate it.

    A single sample cannot be split: it serves both, and describe_fidelity_data says so.
    """

    calibration: list
    evaluation: list

    @classmethod
    def of(cls, samples: Sequence[dict[str, np.ndarray]]) -> SplitSamples:
        samples = list(samples)
        if len(samples) < 2:
            return cls(samples, samples)
        held_out = max(1, len(samples) // 4)
        return cls(samples[:-held_out], samples[-held_out:])


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


def _source_digest(source: str | None, options: SampleOptions) -> str | None:
    """A digest of every file the source reads: arrays, images, or a text file and its tokenizer."""
    if source is None:
        return None
    path = Path(source)
    if sample_kind(path) is not None:
        files = sample_files(path, options)
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".npy", ".npz") and p.is_file())
    else:
        return _file_digest(path) if path.is_file() else None
    return _combined([*(p.name for p in files), *(_file_digest(p) for p in files if p.is_file())])


def _combined(parts: list[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
