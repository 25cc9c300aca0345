"""Resolve input shapes and build the feed: seeded synthetic tensors or a user's .npz file.

Every dynamic dim gets one size with its origin recorded (`DimChoice`): given by the user,
read from the data file, taken from the model's metadata (the specs' size hints), or a documented default for the
dim's role (see `engine.model.dim_roles`: batch 1, sequence 128, image sides 224 or the
model's `imgsz`, text-line widths 4× their height). A dim whose role is unknown gets a
default too, flagged as guessed, so that callers can say so before a run.

Synthetic values: floats are seeded standard normal; integer inputs named like
token ids take values below the embedding's vocabulary where the model shows it,
else below 100; masks are ones; token-type ids are zeros; position ids count up;
other integers lie in [0, 10); booleans are random unless they are masks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import InputError, ShapeMismatchError, first_line
from engine.model.array_files import ArrayFileError, read_npz
from engine.model.memory_room import shortfall
from engine.model.dim_roles import (
    DimRole,
    DynamicDim,
    default_size,
    dim_key,
    dynamic_dims,
    unnamed_key,
)
from engine.model.sample_data import SampleOptions, describe, load_samples, sample_kind
from engine.model.tensors import TensorSpec

TOKEN_ID_CEILING = 100  # used when the model does not show its vocabulary size
OTHER_INTEGER_CEILING = 10


@dataclass(frozen=True)
class InputRequest:
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # --shape NAME=DIMS
    dims: Mapping[str, int] = field(default_factory=dict)  # --dim NAME=N
    batch: int | None = None  # --batch N
    npz: Path | None = None  # --inputs: an .npz, a folder of images, or a .txt file (one sample a line)
    seed: int = 0
    samples: SampleOptions = field(default_factory=SampleOptions)  # how images or text become inputs


@dataclass(frozen=True)
class DimChoice:
    """The size one dynamic dim gets for a run, and where it came from."""

    size: int
    origin: str  # "given", "data", "model metadata" or "default"
    reason: str  # a few words: "batch", "image width, 4× the fixed height 64 of a text line", "role unknown"
    guessed: bool  # no one gave it and its role is unknown or assumed: a size to check

    def text(self, dim: str) -> str:
        return f"{dim}={self.size} ({self.origin}: {self.reason}{'; guessed' if self.guessed else ''})"


@dataclass(frozen=True)
class PreparedInputs:
    feed: dict[str, np.ndarray]
    source: str
    batch_size: int
    dim_choices: Mapping[str, DimChoice] = field(default_factory=dict)

    @property
    def guessed_dims(self) -> tuple[str, ...]:
        return tuple(dim for dim, choice in self.dim_choices.items() if choice.guessed)

    def dims_text(self) -> str:
        """Each dynamic dim's size and where it came from, on one line."""
        return dims_text(self.dim_choices)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "batch_size": self.batch_size,
            "shapes": {name: list(array.shape) for name, array in self.feed.items()},
            "dtypes": {name: array.dtype.name for name, array in self.feed.items()},
            "dim_choices": {dim: {"size": c.size, "origin": c.origin, "reason": c.reason, "guessed": c.guessed}
                            for dim, c in self.dim_choices.items()},
        }


def dims_text(choices: Mapping[str, DimChoice]) -> str:
    return ", ".join(choice.text(dim) for dim, choice in choices.items())


MAX_DIM_SIZE = 2**31 - 1  # the largest size ONNX Runtime and PyTorch index a dim with
_WHOLE_NUMBER = re.compile(r"[0-9]{1,10}")  # ASCII digits only: str.isdigit() also takes '²' and '４'


def parse_dims(text: str) -> tuple[int, ...]:
    """'1x3x224x224' (or '1,3,224,224') -> (1, 3, 224, 224)."""
    parts = [p for p in re.split(r"[x,×]", text.strip()) if p]
    if not parts or not all(_is_size(p) for p in parts):
        raise InputError(f"bad dims '{text}': expected sizes from 1 to {MAX_DIM_SIZE} like 1x3x224x224")
    return tuple(int(p) for p in parts)


def parse_size(text: str) -> int:
    if not _is_size(text.strip()):
        raise InputError(f"bad size '{text}': expected a whole number from 1 to {MAX_DIM_SIZE}")
    return int(text)


def _is_size(text: str) -> bool:
    return _WHOLE_NUMBER.fullmatch(text) is not None and 1 <= int(text) <= MAX_DIM_SIZE


def parse_shape_options(texts: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """['input_ids=1x128', ...] -> {'input_ids': (1, 128)}."""
    return {name: parse_dims(value) for name, value in map(parse_assignment, texts)}


def parse_dim_options(texts: Sequence[str]) -> dict[str, int]:
    """['sequence=256', ...] -> {'sequence': 256}."""
    return {name: parse_size(value) for name, value in map(parse_assignment, texts)}


def parse_assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise InputError(f"bad option '{text}': expected NAME=VALUE")
    return name.strip(), value.strip()


def prepare_inputs(
    specs: Sequence[TensorSpec],
    request: InputRequest,
    *,
    index_bounds: Mapping[str, int] | None = None,
    dim_bounds: Mapping[str, tuple[int, int | None]] | None = None,
) -> PreparedInputs:
    binder = _DimBinder(specs, dim_bounds or {})
    if request.npz is not None and sample_kind(request.npz) is not None:
        return _first_sample(specs, request, binder)
    if request.npz is not None:
        if request.shapes:
            raise InputError("give either an inputs file or shapes, not both: the file fixes the shapes")
        feed = _load_npz(request.npz, specs)
        for spec in specs:
            binder.bind_shape(spec, feed[spec.name].shape, origin="data", reason=f"file {request.npz.name}")
        return PreparedInputs(feed, str(request.npz), binder.batch_size(feed), binder.choices())

    binder.bind_request(request)
    if request.seed < 0:
        raise InputError(f"the seed must be 0 or more, got {request.seed}")
    shapes = {spec.name: binder.resolve(spec) for spec in specs}
    check_memory(specs, shapes)
    rng = np.random.default_rng(request.seed)
    feed = {spec.name: synthetic_tensor(spec, shapes[spec.name], rng, (index_bounds or {}).get(spec.name))
            for spec in specs}
    return PreparedInputs(feed, f"synthetic (seed {request.seed})", binder.batch_size(feed), binder.choices())


def _first_sample(specs: Sequence[TensorSpec], request: InputRequest, binder: _DimBinder) -> PreparedInputs:
    """The first image(s) or line(s) of the user's data, at the shapes the request and the defaults bind."""
    binder.bind_request(request)
    shapes = {spec.name: binder.resolve(spec) for spec in specs}
    check_memory(specs, shapes)
    feed = load_samples(request.npz, specs, shapes, request.samples, 1)[0]
    source = describe(request.npz, specs, shapes, request.samples)
    return PreparedInputs(feed, source, binder.batch_size(feed), binder.choices())


def choose_dims(
    specs: Sequence[TensorSpec],
    request: InputRequest | None = None,
    *,
    dim_bounds: Mapping[str, tuple[int, int | None]] | None = None,
) -> dict[str, DimChoice]:
    """The size each dynamic dim would get, and why, without building any tensor (an inputs file is not read)."""
    binder = _DimBinder(specs, dim_bounds or {})
    if request is not None and (request.npz is None or sample_kind(request.npz) is not None):
        binder.bind_request(request)
    for spec in specs:
        if spec.shape is not None:
            binder.resolve(spec)
    return binder.choices()


def check_memory(specs: Sequence[TensorSpec], shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Refuses, before anything is allocated, inputs that would not fit in memory (engine.model.memory_room)."""
    needed = sum(math.prod(shapes[spec.name]) * np.dtype(spec.dtype if spec.dtype != "unknown" else "float32").itemsize
                 for spec in specs)
    problem = shortfall(needed)
    if problem:
        shown = ", ".join(f"{name} {'×'.join(map(str, shape)) or 'scalar'}" for name, shape in shapes.items())
        raise InputError(f"inputs of these shapes ({shown}) {problem}: give smaller sizes (batch, dims, shapes)")


def synthetic_tensor(spec: TensorSpec, shape: tuple[int, ...], rng: np.random.Generator, bound: int | None) -> np.ndarray:
    dtype = np.dtype(spec.dtype if spec.dtype != "unknown" else "float32")
    name = spec.name.lower()
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(shape, dtype=np.float32).astype(dtype)
    if dtype == np.bool_:
        return np.ones(shape, dtype) if "mask" in name else rng.integers(0, 2, shape).astype(dtype)
    if not np.issubdtype(dtype, np.integer):
        raise InputError(f"input '{spec.name}': cannot make synthetic values of dtype {dtype}; give --inputs FILE.npz")
    if "mask" in name:
        return np.ones(shape, dtype)
    if "type" in name or "segment" in name:
        return np.zeros(shape, dtype)
    if "position" in name and shape:
        return np.broadcast_to(np.arange(shape[-1], dtype=dtype), shape).copy()
    if _looks_like_token_ids(name):
        return rng.integers(0, bound or TOKEN_ID_CEILING, shape).astype(dtype)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape).astype(dtype)
    return rng.integers(0, min(bound or OTHER_INTEGER_CEILING, OTHER_INTEGER_CEILING), shape).astype(dtype)


def _looks_like_token_ids(name: str) -> bool:
    return name in {"ids", "tokens"} or name.endswith("_ids") or "token" in name


def _load_npz(path: Path, specs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    expected = [spec.name for spec in specs]

    def check_keys(names: list[str]) -> None:
        missing = [name for name in expected if name not in names]
        extra = sorted(set(names) - set(expected))
        if missing or extra:
            raise InputError(
                f"{path}: keys must be the model's input names {expected}"
                + (f"; missing {missing}" if missing else "")
                + (f"; unexpected {extra}" if extra else "")
            )

    try:
        arrays = read_npz(path, check_keys)
    except FileNotFoundError as error:
        raise InputError(f"{path}: no such inputs file") from error
    except (ArrayFileError, OSError) as error:
        raise InputError(f"{path}: {first_line(error)}") from error
    for spec in specs:
        array = arrays[spec.name]
        if spec.dtype != "unknown" and array.dtype != np.dtype(spec.dtype):
            raise ShapeMismatchError(f"input '{spec.name}': the file holds {array.dtype}, the model expects {spec.dtype}")
    # np.require, not np.ascontiguousarray: the latter turns a rank-0 array (a scalar input) into rank 1
    return {spec.name: np.require(arrays[spec.name], requirements="C") for spec in specs}


class _DimBinder:
    """Gives each dynamic dim one size, from the user, the data, the model's metadata or a documented default."""

    def __init__(self, specs: Sequence[TensorSpec], dim_bounds: Mapping[str, tuple[int, int | None]]):
        self.specs = specs
        self.dim_bounds = dim_bounds
        self.dynamic: dict[str, DynamicDim] = dynamic_dims(specs)
        self.sizes: dict[str, int] = {}
        self._choices: dict[str, DimChoice] = {}

    def bind_request(self, request: InputRequest) -> None:
        names = [spec.name for spec in self.specs]
        for name in request.shapes:
            if name not in names:
                raise InputError(f"shape for '{name}': the model has no input '{name}'; its inputs are {names}")
        for spec in self.specs:
            if spec.name in request.shapes:
                self.bind_shape(spec, request.shapes[spec.name], origin="given", reason=f"shape of '{spec.name}'")
        for dim, size in request.dims.items():
            if dim not in self.dynamic:
                known = ", ".join(sorted(self.dynamic)) or "none"
                raise InputError(f"the model has no symbolic dim '{dim}'; its dynamic dims are: {known}")
            self._bind(dim, size, origin="given", reason=f"size of '{dim}'")
        if request.batch is not None:
            self._bind_batch(request.batch)

    def bind_shape(self, spec: TensorSpec, shape: tuple[int, ...], origin: str, reason: str) -> None:
        expected = spec.shape
        where = "the file" if origin == "data" else "given"
        if expected is not None and len(expected) != len(shape):
            raise ShapeMismatchError(
                f"input '{spec.name}': expected shape {spec.shape_text()}, {where} {_text(shape)}: rank differs"
            )
        for axis, size in enumerate(shape):
            dim = expected[axis] if expected is not None else None
            if isinstance(dim, int) and dim != size:
                raise ShapeMismatchError(
                    f"input '{spec.name}': expected shape {spec.shape_text()}, {where} {_text(shape)}: axis {axis} must be {dim}"
                )
            if expected is None:
                self.sizes[unnamed_key(spec.name, axis)] = size  # a rank the model does not record: no choice to show
            elif not isinstance(dim, int):
                self._bind(dim_key(spec, axis), size, origin=origin, reason=reason)

    def resolve(self, spec: TensorSpec) -> tuple[int, ...]:
        if spec.shape is None:
            if unnamed_key(spec.name, 0) in self.sizes:
                return tuple(self.sizes[unnamed_key(spec.name, axis)] for axis in range(self._given_rank(spec)))
            raise InputError(f"input '{spec.name}': the model does not record its shape; give it as {spec.name}=DIMS "
                             "(the CLI's --shape, the model card's shape field)")
        return tuple(dim if isinstance(dim, int) else self._size(dim_key(spec, axis))
                     for axis, dim in enumerate(spec.shape))

    def choices(self) -> dict[str, DimChoice]:
        return dict(self._choices)

    def batch_size(self, feed: Mapping[str, np.ndarray]) -> int:
        for key, dim in self.dynamic.items():
            if dim.role is DimRole.BATCH and key in self.sizes:
                return self.sizes[key]
        first = next(iter(feed.values()), None)
        return int(first.shape[0]) if first is not None and first.ndim >= 2 else 1

    def _size(self, key: str) -> int:
        if key not in self.sizes:
            default = default_size(self.dynamic[key], self.specs, self.dim_bounds)
            self.sizes[key] = default.size
            self._choices[key] = DimChoice(default.size, default.origin, default.reason, default.guessed)
        return self.sizes[key]

    def _bind_batch(self, batch: int) -> None:
        """The batch size sets every batch dim (by name, or the leading dynamic dim of an input)."""
        batch_dims = sorted(key for key, dim in self.dynamic.items() if dim.role is DimRole.BATCH)
        for key in batch_dims:
            self._bind(key, batch, origin="given", reason="batch size")
        applied = bool(batch_dims)
        for spec in self.specs:
            if spec.shape is None:
                key = unnamed_key(spec.name, 0)
                if key in self.sizes and self.sizes[key] != batch:
                    raise ShapeMismatchError(f"input '{spec.name}': its shape gives batch {self.sizes[key]} "
                                             f"but the batch size is {batch}")
                applied = True  # its shape comes with the request; resolve() says so when it does not
            elif spec.shape and spec.shape[0] == batch:
                applied = True  # a fixed batch of this very size
        if not applied and batch != 1:  # one item is what every model takes
            raise InputError(f"the batch size {batch}: the model has no dynamic batch dimension "
                             f"(inputs: {self._inputs_text()})")

    def _bind(self, key: str, size: int, origin: str, reason: str) -> None:
        if key in self.sizes and self.sizes[key] != size:
            before = self._choices.get(key)
            was = f" from the {before.reason}" if before is not None else ""
            raise ShapeMismatchError(f"dim '{key}' is {self.sizes[key]}{was} but {size} from the {reason}")
        lower, upper = self.dim_bounds.get(key, (1, None))
        if size < lower or (upper is not None and size > upper):
            allowed = f"{lower}..{upper if upper is not None else '∞'}"
            raise ShapeMismatchError(f"dim '{key}' = {size} from the {reason} is outside the model's allowed range {allowed}")
        self.sizes[key] = size
        self._choices[key] = DimChoice(size, origin, reason, False)

    def _given_rank(self, spec: TensorSpec) -> int:
        rank = 0
        while unnamed_key(spec.name, rank) in self.sizes:
            rank += 1
        return rank

    def _inputs_text(self) -> str:
        return ", ".join(f"{spec.name} {spec.shape_text()}" for spec in self.specs)


def _text(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape)
