"""What each dynamic input dim is for, and the size a run gives it when no one says.

A dim is dynamic when the model leaves its size open: a named dim (`batch`, `unk__214`,
`p2o.DynamicDimension.0`), or an unnamed one (`?`, or Paddle's `-1`). Named dims shared by
several inputs are one dim; unnamed dims are each their own, keyed `input[axis]`.

Roles, first match wins:

    batch     a dim named batch, batch_size, bs, n, b (or containing "batch"), or the leading
              dim of any input unless its name says it is something else
    sequence  a dim named like seq, sequence, length, len, tokens, time, frames; or the
              second dim of a rank-2 token-id, mask or token-type input
    height,   the two spatial dims of a rank-4 float image (NCHW or NHWC: the channel axis holds
    width     1, 3 or 4); or a dim named height/width (h/w)
    channels  a dim named channels/channel/c; or the channel axis of a rank-4 float input whose
              layout is not fixed (NCHW is then assumed, and the guess is flagged)

Sizes, where no one gives one:

    batch                           1
    sequence                        128
    channels                        3
    height and width                the model's metadata where it records them (Ultralytics
                                    exports: `imgsz` = '[320, 320]', height then width), else 224;
                                    a free width beside a fixed height H <= 64 (a text-line
                                    recognizer such as CRNN) is 4*H, and a free side beside a fixed
                                    other side of more than 64 takes that side's size (square)
    any other dim                   32, flagged as guessed: its role is unknown

Sizes are raised to the smallest size the model accepts (and capped at the largest).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from engine.model.tensors import TensorSpec


class DimRole(StrEnum):
    BATCH = "batch"
    SEQUENCE = "sequence"
    HEIGHT = "image height"
    WIDTH = "image width"
    CHANNELS = "channels"
    UNKNOWN = "unknown"


BATCH_SIZE = 1
SEQUENCE_LENGTH = 128
CHANNELS = 3
IMAGE_SIDE = 224
TEXT_LINE_MAX_HEIGHT = 64  # a fixed height up to this reads as a text line
TEXT_LINE_WIDTH_PER_HEIGHT = 4
UNKNOWN_DIM_SIZE = 32
IMAGE_CHANNEL_COUNTS = (1, 3, 4)
FLOAT_DTYPES = ("float16", "float32", "float64", "bfloat16")

BATCH_NAMES = frozenset({"batch", "batch_size", "bs", "n", "b"})
SEQUENCE_WORDS = ("seq", "sequence", "length", "len", "token", "tokens", "time", "frames")
CHANNEL_NAMES = frozenset({"channels", "channel", "c"})
TEXT_INPUT_WORDS = ("ids", "mask", "token", "type")


@dataclass(frozen=True)
class DynamicDim:
    key: str  # the dim's name, or "input[axis]" for an unnamed dim
    input: str
    axis: int
    role: DimRole
    assumed_layout: bool = False  # the role rests on an assumed NCHW layout


@dataclass(frozen=True)
class DefaultSize:
    size: int
    origin: str  # "model metadata" or "default"
    reason: str  # why this size, in a few words
    guessed: bool


def unnamed_key(input_name: str, axis: int) -> str:
    return f"{input_name}[{axis}]"


def dim_key(spec: TensorSpec, axis: int) -> str | None:
    """The key of a dynamic dim, None for a fixed one."""
    dim = spec.shape[axis] if spec.shape is not None else None
    if isinstance(dim, int):
        return None
    return dim if isinstance(dim, str) else unnamed_key(spec.name, axis)


def dynamic_dims(specs: Sequence[TensorSpec]) -> dict[str, DynamicDim]:
    """Every dynamic dim of inputs whose rank is known, by key; a shared name is one dim, its strongest role kept."""
    found: dict[str, DynamicDim] = {}
    for spec in specs:
        for axis, dim in enumerate(spec.shape or ()):
            key = dim_key(spec, axis)
            if key is None:
                continue
            role, assumed = _role(spec, axis, dim)
            known = found.get(key)
            if known is None or (known.role is DimRole.UNKNOWN and role is not DimRole.UNKNOWN):
                found[key] = DynamicDim(key, spec.name, axis, role, assumed)
    return found


def default_size(dim: DynamicDim, specs: Sequence[TensorSpec],
                 dim_bounds: Mapping[str, tuple[int, int | None]]) -> DefaultSize:
    chosen = _unbounded_default(dim, specs)
    lower, upper = dim_bounds.get(dim.key, (1, None))
    size = min(max(chosen.size, lower), upper) if upper is not None else max(chosen.size, lower)
    if size == chosen.size:
        return chosen
    return DefaultSize(size, chosen.origin, f"{chosen.reason}, moved into the model's range", chosen.guessed)


def with_metadata_hints(specs: Sequence[TensorSpec], metadata: Mapping[str, str]) -> tuple[TensorSpec, ...]:
    """The specs with the sizes the model's metadata gives their open image sides (Ultralytics' imgsz)."""
    sides = _metadata_image_size(metadata)
    if sides is None:
        return tuple(specs)
    where = f"imgsz {metadata['imgsz'].strip()}"
    hinted = []
    for spec in specs:
        axes = _image_axes(spec)
        hints = tuple((axis, size, where) for axis, size in zip(axes or (), sides)
                      if not isinstance(spec.shape[axis], int))
        hinted.append(replace(spec, size_hints=spec.size_hints + hints) if hints else spec)
    return tuple(hinted)


def _unbounded_default(dim: DynamicDim, specs: Sequence[TensorSpec]) -> DefaultSize:
    hint = _hint(dim, specs)
    if hint is not None:
        return hint
    match dim.role:
        case DimRole.BATCH:
            return DefaultSize(BATCH_SIZE, "default", "batch", False)
        case DimRole.SEQUENCE:
            return DefaultSize(SEQUENCE_LENGTH, "default", "sequence length", False)
        case DimRole.CHANNELS:
            return DefaultSize(CHANNELS, "default", "channels" + (", NCHW assumed" if dim.assumed_layout else ""),
                               dim.assumed_layout)
        case DimRole.HEIGHT | DimRole.WIDTH:
            return _image_side(dim, specs)
    return DefaultSize(UNKNOWN_DIM_SIZE, "default", "role unknown", True)


def _hint(dim: DynamicDim, specs: Sequence[TensorSpec]) -> DefaultSize | None:
    """The model's own suggestion for this dim, from any input that holds it."""
    for spec in specs:
        for axis, size, where in spec.size_hints:
            if dim_key(spec, axis) == dim.key:
                return DefaultSize(size, "model metadata", where, False)
    return None


def _image_side(dim: DynamicDim, specs: Sequence[TensorSpec]) -> DefaultSize:
    side = dim.role.name.lower()
    other = _fixed_other_side(dim, specs)
    assumed = ", NCHW assumed" if dim.assumed_layout else ""
    if other is not None and dim.role is DimRole.WIDTH and other <= TEXT_LINE_MAX_HEIGHT:
        return DefaultSize(TEXT_LINE_WIDTH_PER_HEIGHT * other, "default",
                           f"image width, {TEXT_LINE_WIDTH_PER_HEIGHT}× the fixed height {other} of a text line{assumed}",
                           dim.assumed_layout)
    if other is not None:
        return DefaultSize(other, "default", f"image {side}, the fixed other side{assumed}", dim.assumed_layout)
    return DefaultSize(IMAGE_SIDE, "default", f"image {side}{assumed}", dim.assumed_layout)


def _metadata_image_size(metadata: Mapping[str, str]) -> tuple[int, int] | None:
    """Ultralytics records the export size as imgsz: '[320, 320]' (height, width) or '640'."""
    numbers = [int(n) for n in re.findall(r"\d+", metadata.get("imgsz", ""))]
    if len(numbers) == 1:
        return numbers[0], numbers[0]
    if len(numbers) == 2 and all(numbers):
        return numbers[0], numbers[1]
    return None


def _fixed_other_side(dim: DynamicDim, specs: Sequence[TensorSpec]) -> int | None:
    spec = next(s for s in specs if s.name == dim.input)
    axes = _image_axes(spec)
    if axes is None or dim.axis not in axes:
        return None
    other = spec.shape[axes[1] if dim.axis == axes[0] else axes[0]]
    return other if isinstance(other, int) and other > 0 else None


def _role(spec: TensorSpec, axis: int, dim) -> tuple[DimRole, bool]:
    by_name = _role_by_name(dim) if isinstance(dim, str) else DimRole.UNKNOWN
    if by_name is not DimRole.UNKNOWN:
        return by_name, False
    if axis == 0:
        return DimRole.BATCH, False
    axes = _image_axes(spec)
    if axes is not None and axis in axes:
        return (DimRole.HEIGHT if axis == axes[0] else DimRole.WIDTH), _assumed_nchw(spec)
    if _assumed_nchw(spec) and axis == 1:
        return DimRole.CHANNELS, True
    name = spec.name.lower()
    if len(spec.shape) == 2 and axis == 1 and any(word in name for word in TEXT_INPUT_WORDS):
        return DimRole.SEQUENCE, False
    return DimRole.UNKNOWN, False


def _role_by_name(name: str) -> DimRole:
    lower = name.lower()
    words = [w for w in re.split(r"[^a-z0-9]+", lower) if w]
    if lower in BATCH_NAMES or "batch" in lower:
        return DimRole.BATCH
    if "height" in lower or lower == "h":
        return DimRole.HEIGHT
    if "width" in lower or lower == "w":
        return DimRole.WIDTH
    if lower in CHANNEL_NAMES:
        return DimRole.CHANNELS
    if any(w in SEQUENCE_WORDS or w.startswith("seq") for w in words):
        return DimRole.SEQUENCE
    return DimRole.UNKNOWN


def _image_axes(spec: TensorSpec) -> tuple[int, int] | None:
    """The (height, width) axes of a rank-4 float image input, None for any other input."""
    shape = spec.shape
    if shape is None or len(shape) != 4 or spec.dtype not in FLOAT_DTYPES:
        return None
    if shape[1] in IMAGE_CHANNEL_COUNTS:
        return 2, 3
    if shape[3] in IMAGE_CHANNEL_COUNTS:
        return 1, 2
    if not isinstance(shape[1], int) and not isinstance(shape[3], int):
        return 2, 3  # layout open: NCHW assumed
    return None


def _assumed_nchw(spec: TensorSpec) -> bool:
    shape = spec.shape
    return (shape is not None and len(shape) == 4 and spec.dtype in FLOAT_DTYPES
            and not isinstance(shape[1], int) and not isinstance(shape[3], int))
