"""Feeds from a folder of images (.png, .jpg, .jpeg, .bmp, .webp), for a model with one image input.

The input must have rank 4 with a channel axis of 1 or 3: NCHW when axis 1 holds it, else NHWC when axis 3 does
(the model's fixed dims are looked at first, then the bound shape). Each image is converted to RGB (3 channels) or
grayscale (1 channel) and resized to the bound height × width with bilinear filtering; the aspect ratio is not kept
and nothing is cropped. A float input then gets, per channel c,

    value = (pixel / divisor - mean[c]) / std[c]

with the defaults divisor 255, mean 0 and std 1 (pixels in 0–1) and the channels in RGB order; a uint8 input gets
the raw pixels. A bound batch of B stacks B consecutive images (in file-name order) into one feed; images left over
that do not fill a batch are not used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import InputError, first_line
from engine.model.tensors import TensorSpec

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
CHANNEL_ORDERS = ("rgb", "bgr")


@dataclass(frozen=True)
class ImageNormalization:
    """How pixels become input values; mean and std hold one value for every channel or one per channel."""

    divisor: float = 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    channel_order: str = "rgb"

    def text(self) -> str:
        def values(numbers: tuple[float, ...]) -> str:
            return ",".join(f"{number:g}" for number in numbers)
        return (f"{self.channel_order.upper()}, (pixel / {self.divisor:g} - mean {values(self.mean)}) "
                f"/ std {values(self.std)}")


def parse_channel_values(text: str, what: str) -> tuple[float, ...]:
    """'0.485,0.456,0.406' or '0.5' -> finite numbers, one for every channel or one per channel."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise InputError(f"{what} '{text}': expected 1 or 3 numbers separated by commas") from None
    if len(values) not in (1, 3) or not all(math.isfinite(value) for value in values):
        raise InputError(f"{what} '{text}': expected 1 or 3 finite numbers separated by commas")
    return values


@dataclass(frozen=True)
class ImageLayout:
    """Where the image input's axes lie, at the bound shape."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    channels_first: bool

    @property
    def batch(self) -> int:
        return self.shape[0]

    @property
    def channels(self) -> int:
        return self.shape[1] if self.channels_first else self.shape[3]

    @property
    def height(self) -> int:
        return self.shape[2] if self.channels_first else self.shape[1]

    @property
    def width(self) -> int:
        return self.shape[3] if self.channels_first else self.shape[2]

    def text(self) -> str:
        order = "NCHW" if self.channels_first else "NHWC"
        return f"'{self.name}' {'×'.join(map(str, self.shape))} {order}"


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def image_layout(specs: Sequence[TensorSpec], shapes: Mapping[str, tuple[int, ...]]) -> ImageLayout:
    """The single image input's layout; an InputError says why the model cannot take images."""
    if len(specs) != 1:
        names = [spec.name for spec in specs]
        raise InputError(f"a folder of images feeds a model with one image input; this model has inputs {names}")
    spec = specs[0]
    shape = tuple(shapes[spec.name])
    dtype = np.dtype(spec.dtype if spec.dtype != "unknown" else "float32")
    if dtype.kind != "f" and dtype != np.uint8:
        raise InputError(f"input '{spec.name}' takes {dtype}; images feed only float or uint8 inputs")
    declared = spec.shape if spec.shape is not None and len(spec.shape) == len(shape) else shape
    if len(shape) == 4:
        for channels_first, axis in ((True, 1), (False, 3)):
            if declared[axis] in (1, 3):
                return ImageLayout(spec.name, dtype, shape, channels_first)
        for channels_first, axis in ((True, 1), (False, 3)):
            if shape[axis] in (1, 3):
                return ImageLayout(spec.name, dtype, shape, channels_first)
    raise InputError(
        f"input '{spec.name}' has shape {'×'.join(map(str, shape))}; images feed only NCHW or NHWC inputs "
        "with 1 or 3 channels"
    )


def image_feeds(folder: Path, layout: ImageLayout, normalization: ImageNormalization,
                count: int) -> list[dict[str, np.ndarray]]:
    """Up to `count` feeds of `layout.batch` images each."""
    files = image_files(folder)
    if not files:
        raise InputError(f"the folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
    if len(files) < layout.batch:
        raise InputError(f"the folder holds {len(files)} image(s); one batch of input '{layout.name}' needs {layout.batch}")
    mean, std = _per_channel(normalization.mean, layout, "mean"), _per_channel(normalization.std, layout, "std")
    if np.any(std == 0):
        raise InputError("image std must not be 0")
    feeds = []
    for start in range(0, min(len(files) // layout.batch, count) * layout.batch, layout.batch):
        images = [_pixels(path, layout, normalization.channel_order) for path in files[start:start + layout.batch]]
        batch = np.stack(images)  # N, H, W, C
        if layout.dtype.kind == "f":
            batch = (batch / np.float32(normalization.divisor) - mean) / std
        if layout.channels_first:
            batch = batch.transpose(0, 3, 1, 2)
        feeds.append({layout.name: np.ascontiguousarray(batch.astype(layout.dtype))})
    return feeds


def _per_channel(values: tuple[float, ...], layout: ImageLayout, what: str) -> np.ndarray:
    if len(values) not in (1, layout.channels):
        raise InputError(f"image {what} has {len(values)} values; input '{layout.name}' has {layout.channels} channel(s)")
    return np.asarray(values, np.float32)


def _pixels(path: Path, layout: ImageLayout, channel_order: str) -> np.ndarray:
    """The image at `path` as float32 H×W×C pixels in 0–255, resized to the layout."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            converted = image.convert("L" if layout.channels == 1 else "RGB")
            resized = converted.resize((layout.width, layout.height), Image.Resampling.BILINEAR)
            pixels = np.asarray(resized, dtype=np.float32)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as error:
        raise InputError(f"image {path.name}: not a readable image ({first_line(error)})") from error
    if layout.channels == 1:
        return pixels[..., None]
    return pixels[..., ::-1] if channel_order == "bgr" else pixels
