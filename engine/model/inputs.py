"""Resolve input shapes and build the feed: seeded synthetic tensors or a user's .npz file.

Default sizes for symbolic dims (used only when the user gives none, and always
reported back as defaults):

    batch, batch_size, n, bs           1
    sequence, sequence_length, seq, seq_len, tokens   128
    height, width                      224
    channels                           3
    any other or unnamed dim           1 (or the smallest size the model accepts)

Synthetic values: floats are seeded standard normal; integer inputs named like
token ids take values below the embedding's vocabulary where the model shows it,
else below 100; masks are ones; token-type ids are zeros; position ids count up;
other integers lie in [0, 10); booleans are random unless they are masks.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import InputError, ShapeMismatchError
from engine.model.tensors import TensorSpec

DEFAULT_DIM_SIZES = {
    "batch": 1, "batch_size": 1, "n": 1, "bs": 1,
    "sequence": 128, "sequence_length": 128, "seq": 128, "seq_len": 128, "tokens": 128,
    "height": 224, "width": 224, "channels": 3,
}
BATCH_DIM_NAMES = frozenset({"batch", "batch_size", "n", "bs"})
TOKEN_ID_CEILING = 100  # used when the model does not show its vocabulary size
OTHER_INTEGER_CEILING = 10


@dataclass(frozen=True)
class InputRequest:
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # --shape NAME=DIMS
    dims: Mapping[str, int] = field(default_factory=dict)  # --dim NAME=N
    batch: int | None = None  # --batch N
    npz: Path | None = None  # --inputs FILE.npz
    seed: int = 0


@dataclass(frozen=True)
class PreparedInputs:
    feed: dict[str, np.ndarray]
    source: str
    batch_size: int
    defaults_used: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "batch_size": self.batch_size,
            "shapes": {name: list(array.shape) for name, array in self.feed.items()},
            "dtypes": {name: array.dtype.name for name, array in self.feed.items()},
            "defaults_used": list(self.defaults_used),
        }


def default_dim_size(dim: str, dim_bounds: Mapping[str, tuple[int, int | None]] | None = None) -> int:
    """The documented default for a symbolic dim, raised to the smallest size the model accepts."""
    lower = (dim_bounds or {}).get(dim, (1, None))[0]
    return max(DEFAULT_DIM_SIZES.get(dim.lower(), 1), lower)


def parse_dims(text: str) -> tuple[int, ...]:
    """'1x3x224x224' (or '1,3,224,224') -> (1, 3, 224, 224)."""
    parts = [p for p in re.split(r"[x,×]", text.strip()) if p]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise InputError(f"bad dims '{text}': expected positive sizes like 1x3x224x224")
    return tuple(int(p) for p in parts)


def parse_size(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise InputError(f"bad size '{text}': expected a positive whole number")
    return int(text)


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
    if request.npz is not None:
        if request.shapes:
            raise InputError("give either --inputs FILE.npz or --shape, not both: the file fixes the shapes")
        feed = _load_npz(request.npz, specs)
        for spec in specs:
            binder.bind_shape(spec, feed[spec.name].shape, origin=str(request.npz))
        return PreparedInputs(feed, str(request.npz), binder.batch_size(feed), ())

    binder.bind_request(request)
    rng = np.random.default_rng(request.seed)
    feed = {}
    for spec in specs:
        shape = binder.resolve(spec)
        feed[spec.name] = synthetic_tensor(spec, shape, rng, (index_bounds or {}).get(spec.name))
    return PreparedInputs(feed, f"synthetic (seed {request.seed})", binder.batch_size(feed), tuple(binder.defaults_used))


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
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError as error:
        raise InputError(f"{path}: no such inputs file") from error
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise InputError(f"{path}: not a readable .npz file ({error})") from error
    expected = [spec.name for spec in specs]
    missing = [name for name in expected if name not in arrays]
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        raise InputError(
            f"{path}: keys must be the model's input names {expected}"
            + (f"; missing {missing}" if missing else "")
            + (f"; unexpected {extra}" if extra else "")
        )
    for spec in specs:
        array = arrays[spec.name]
        if spec.dtype != "unknown" and array.dtype != np.dtype(spec.dtype):
            raise ShapeMismatchError(f"input '{spec.name}': the file holds {array.dtype}, the model expects {spec.dtype}")
    return {spec.name: np.ascontiguousarray(arrays[spec.name]) for spec in specs}


class _DimBinder:
    """Gives each symbolic dim one size, from the user, the data or a documented default."""

    def __init__(self, specs: Sequence[TensorSpec], dim_bounds: Mapping[str, tuple[int, int | None]]):
        self.specs = specs
        self.dim_bounds = dim_bounds
        self.sizes: dict[str, int] = {}
        self.defaults_used: list[str] = []
        self.symbolic = {d for spec in specs for d in spec.symbolic_dims}

    def bind_request(self, request: InputRequest) -> None:
        names = [spec.name for spec in self.specs]
        for name in request.shapes:
            if name not in names:
                raise InputError(f"--shape {name}: the model has no input '{name}'; its inputs are {names}")
        for spec in self.specs:
            if spec.name in request.shapes:
                self.bind_shape(spec, request.shapes[spec.name], origin="--shape")
        for dim, size in request.dims.items():
            if dim not in self.symbolic:
                known = ", ".join(sorted(self.symbolic)) or "none"
                raise InputError(f"--dim {dim}: the model has no symbolic dim '{dim}'; its symbolic dims are: {known}")
            self._bind(dim, size, origin="--dim")
        if request.batch is not None:
            self._bind_batch(request.batch)

    def bind_shape(self, spec: TensorSpec, shape: tuple[int, ...], origin: str) -> None:
        expected = spec.shape
        if expected is not None and len(expected) != len(shape):
            raise ShapeMismatchError(
                f"input '{spec.name}': expected shape {spec.shape_text()}, given {_text(shape)} ({origin}): rank differs"
            )
        for axis, size in enumerate(shape):
            dim = expected[axis] if expected is not None else None
            if isinstance(dim, int) and dim != size:
                raise ShapeMismatchError(
                    f"input '{spec.name}': expected shape {spec.shape_text()}, given {_text(shape)} ({origin}): axis {axis} must be {dim}"
                )
            if isinstance(dim, str):
                self._bind(dim, size, origin=f"{origin} for input '{spec.name}'")
            elif dim is None:
                self.sizes[_unnamed(spec.name, axis)] = size

    def resolve(self, spec: TensorSpec) -> tuple[int, ...]:
        if spec.shape is None:
            if _unnamed(spec.name, 0) in self.sizes:
                return tuple(self.sizes[_unnamed(spec.name, axis)] for axis in range(self._given_rank(spec)))
            raise InputError(f"input '{spec.name}': the model does not record its shape; pass --shape {spec.name}=DIMS")
        return tuple(self._size(spec, axis, dim) for axis, dim in enumerate(spec.shape))

    def batch_size(self, feed: Mapping[str, np.ndarray]) -> int:
        for name in BATCH_DIM_NAMES:
            if name in self.sizes:
                return self.sizes[name]
        first = next(iter(feed.values()), None)
        return int(first.shape[0]) if first is not None and first.ndim >= 2 else 1

    def _size(self, spec: TensorSpec, axis: int, dim) -> int:
        if isinstance(dim, int):
            return dim
        key = dim if isinstance(dim, str) else _unnamed(spec.name, axis)
        if key not in self.sizes:
            self.sizes[key] = default_dim_size(key, self.dim_bounds)
            self.defaults_used.append(f"{key}={self.sizes[key]}")
        return self.sizes[key]

    def _bind_batch(self, batch: int) -> None:
        """--batch sets the batch-named dims, else every input's dynamic leading dim."""
        batch_dims = sorted(d for d in self.symbolic if d.lower() in BATCH_DIM_NAMES)
        for dim in batch_dims:
            self._bind(dim, batch, origin="--batch")
        applied = bool(batch_dims)
        for spec in self.specs if not batch_dims else ():
            if spec.shape == ():
                continue  # a scalar has no batch axis
            leading = spec.shape[0] if spec.shape else None
            if isinstance(leading, str):
                self._bind(leading, batch, origin="--batch")
            elif spec.shape is None and _unnamed(spec.name, 0) not in self.sizes:
                applied = True  # its shape must come from --shape; resolve() says so
                continue
            elif isinstance(leading, int):
                applied = applied or leading == batch
                continue
            else:
                key = _unnamed(spec.name, 0)
                if self.sizes.setdefault(key, batch) != batch:
                    raise ShapeMismatchError(f"input '{spec.name}': --shape gives batch {self.sizes[key]} but --batch is {batch}")
            applied = True
        if not applied:
            raise InputError(f"--batch {batch}: the model has no dynamic batch dimension (inputs: {self._inputs_text()})")

    def _bind(self, dim: str, size: int, origin: str) -> None:
        if dim in self.sizes and self.sizes[dim] != size:
            raise ShapeMismatchError(f"dim '{dim}' is {self.sizes[dim]} elsewhere but {size} from {origin}")
        lower, upper = self.dim_bounds.get(dim, (1, None))
        if size < lower or (upper is not None and size > upper):
            allowed = f"{lower}..{upper if upper is not None else '∞'}"
            raise ShapeMismatchError(f"dim '{dim}' = {size} from {origin} is outside the model's allowed range {allowed}")
        self.sizes[dim] = size

    def _given_rank(self, spec: TensorSpec) -> int:
        rank = 0
        while _unnamed(spec.name, rank) in self.sizes:
            rank += 1
        return rank

    def _inputs_text(self) -> str:
        return ", ".join(f"{spec.name} {spec.shape_text()}" for spec in self.specs)


def _unnamed(input_name: str, axis: int) -> str:
    return f"{input_name}[{axis}]"


def _text(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape)
