"""Real inputs from the user's own files, without hand-made .npz files: a folder of images or a text file.

    load_samples(source, specs, shapes, options, count)   ->  up to `count` feeds at the bound `shapes`
    describe(source, specs, shapes, options)              ->  one line saying what was read and how

`shapes` holds the bound shape of every input for one feed (e.g. the shapes of a prepared synthetic feed), so the
samples match whatever sizes the rest of the run uses. A folder of images feeds a model with one image input
(engine.model.image_samples documents resizing and normalization); a `.txt` file, one sample a line, feeds the
token inputs of a text model through a tokenizer (engine.model.text_samples). A source that does not fit the
model raises an InputError with one line that starts with the source and names the file or input at fault.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import InputError
from engine.model.image_samples import ImageNormalization, image_feeds, image_files, image_layout
from engine.model.tensors import TensorSpec
from engine.model.text_samples import text_feeds, text_layout, tokenizer_file

Feed = dict[str, np.ndarray]
TEXT_SUFFIX = ".txt"


@dataclass(frozen=True)
class SampleOptions:
    """How files become inputs: the tokenizer for text, the normalization for images."""

    tokenizer: Path | None = None
    normalization: ImageNormalization = field(default_factory=ImageNormalization)


def sample_kind(source: Path) -> str | None:
    """'text' for a .txt file, 'images' for a folder holding images, None for anything else."""
    if source.is_file() and source.suffix.lower() == TEXT_SUFFIX:
        return "text"
    if source.is_dir() and image_files(source):
        return "images"
    return None


def load_samples(source: Path, specs: Sequence[TensorSpec], shapes: Mapping[str, tuple[int, ...]],
                 options: SampleOptions, count: int) -> list[Feed]:
    """Up to `count` feeds from a folder of images or a text file, each at the bound `shapes`."""
    source = Path(source)
    try:
        if not source.exists():
            raise InputError("no such file or folder")
        if source.is_dir():
            return image_feeds(source, image_layout(specs, shapes), options.normalization, count)
        if source.suffix.lower() == TEXT_SUFFIX:
            return text_feeds(source, _tokenizer(options), text_layout(specs, shapes), count)
        raise InputError(f"expected a folder of images or a {TEXT_SUFFIX} file with one sample a line")
    except InputError as error:
        raise InputError(f"{source}: {error}") from error


def describe(source: Path, specs: Sequence[TensorSpec], shapes: Mapping[str, tuple[int, ...]],
             options: SampleOptions) -> str:
    """What load_samples reads from `source` and how it turns it into inputs, for records and reports."""
    source = Path(source)
    if source.is_dir():
        layout = image_layout(specs, shapes)
        return (f"images from {source} resized to {layout.height}×{layout.width} for {layout.text()}, "
                + (options.normalization.text() if layout.dtype.kind == "f" else "raw uint8 pixels"))
    layout = text_layout(specs, shapes)
    names = ", ".join(spec.name for spec in layout.roles.values())
    return (f"lines of {source} tokenized by {tokenizer_file(_tokenizer(options))}, truncated or padded to "
            f"{layout.length} tokens, {layout.batch} line(s) per feed, for {names}")


def sample_files(source: Path, options: SampleOptions) -> list[Path]:
    """Every file load_samples reads from `source`, for a digest of the data a run used."""
    source = Path(source)
    if source.is_dir():
        return image_files(source)
    tokenizer = [tokenizer_file(options.tokenizer)] if options.tokenizer is not None else []
    return [source, *tokenizer]


def _tokenizer(options: SampleOptions) -> Path:
    if options.tokenizer is None:
        raise InputError("a text file needs a tokenizer: a tokenizer.json or a Hugging Face folder holding one")
    return Path(options.tokenizer)
