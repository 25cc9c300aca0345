"""Feeds from a text file, one sample a line, tokenized with a Hugging Face `tokenizers` tokenizer.

The tokenizer is a `tokenizer.json` file or a folder holding one (a Hugging Face model folder). Blank lines are
skipped. Each line is encoded with the tokenizer's special tokens, truncated to the bound sequence length (the
last axis of the token-id input) and padded after its end with the tokenizer's pad id (its padding setting, else
the id of `[PAD]` or `<pad>`, else 0). The model's inputs are fed by their names:

    token ids        (`input_ids`, `ids`, `tokens`, `*_ids`, names holding "token")   the token ids
    attention mask   (names holding "mask")                                            1 for tokens, 0 for padding
    token type ids   (names holding "type" or "segment")                              the tokenizer's type ids
    position ids     (names holding "position")                                       0, 1, 2, ...

each in the model's own integer (or boolean, for a mask) dtype. A bound batch of B stacks B consecutive lines into
one feed; lines left over that do not fill a batch are not used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import InputError, first_line
from engine.model.tensors import TensorSpec

TOKENIZER_FILE = "tokenizer.json"
PAD_TOKENS = ("[PAD]", "<pad>")
ROLES = ("ids", "mask", "type", "position")


@dataclass(frozen=True)
class TextLayout:
    """The model's token inputs by role, at the bound (batch, sequence) shape of the token ids."""

    roles: dict[str, TensorSpec]  # role -> input
    shape: tuple[int, ...]

    @property
    def batch(self) -> int:
        return self.shape[0] if len(self.shape) == 2 else 1

    @property
    def length(self) -> int:
        return self.shape[-1]


def tokenizer_file(path: Path) -> Path:
    """The tokenizer.json given directly or inside a folder."""
    return path / TOKENIZER_FILE if path.is_dir() else path


def text_layout(specs: Sequence[TensorSpec], shapes: Mapping[str, tuple[int, ...]]) -> TextLayout:
    roles: dict[str, TensorSpec] = {}
    for spec in specs:
        role = _role(spec.name.lower())
        if role is None or role in roles:
            raise InputError(
                f"input '{spec.name}' is not one a text file can feed (token ids, attention mask, token type ids, "
                "position ids)"
            )
        roles[role] = spec
    if "ids" not in roles:
        names = [spec.name for spec in specs]
        raise InputError(f"a text file feeds token ids, but the model has no token-id input (inputs {names})")
    shape = tuple(shapes[roles["ids"].name])
    if len(shape) not in (1, 2):
        raise InputError(f"token-id input '{roles['ids'].name}' has shape {_text(shape)}; expected batch×sequence")
    for spec in roles.values():
        if tuple(shapes[spec.name]) != shape:
            raise InputError(f"input '{spec.name}' has shape {_text(shapes[spec.name])}; the token ids have {_text(shape)}")
        if _dtype(spec).kind not in "iub":
            raise InputError(f"input '{spec.name}' takes {spec.dtype}; token inputs are integers")
    return TextLayout(roles, shape)


def load_tokenizer(path: Path):
    from tokenizers import Tokenizer

    file = tokenizer_file(path)
    if not file.is_file():
        where = f"{path} holds no {TOKENIZER_FILE}" if path.is_dir() else f"{path}: no such file"
        raise InputError(f"tokenizer {where}")
    try:
        return Tokenizer.from_file(str(file))
    except Exception as error:  # the tokenizers library raises a bare Exception for any bad file
        raise InputError(f"tokenizer {file}: not a readable tokenizer.json ({first_line(error)})") from error


def pad_id(tokenizer) -> int:
    if tokenizer.padding is not None:
        return int(tokenizer.padding["pad_id"])
    return next((tokenizer.token_to_id(token) for token in PAD_TOKENS if tokenizer.token_to_id(token) is not None), 0)


def text_lines(path: Path) -> list[str]:
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"not readable as UTF-8 text ({first_line(error)})") from error
    lines = [line for line in lines if line]
    if not lines:
        raise InputError("the file holds no text (one sample a line)")
    return lines


def text_feeds(path: Path, tokenizer_path: Path, layout: TextLayout, count: int) -> list[dict[str, np.ndarray]]:
    """Up to `count` feeds of `layout.batch` lines each."""
    lines = text_lines(path)
    if len(lines) < layout.batch:
        raise InputError(f"the file holds {len(lines)} line(s); one batch needs {layout.batch}")
    tokenizer = load_tokenizer(tokenizer_path)
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=layout.length)
    padding = pad_id(tokenizer)
    used = min(len(lines) // layout.batch, count) * layout.batch
    encodings = tokenizer.encode_batch(lines[:used])
    columns = {role: np.zeros((used, layout.length), np.int64) for role in ROLES}
    columns["ids"][:] = padding
    for row, encoding in enumerate(encodings):
        size = len(encoding.ids)
        columns["ids"][row, :size] = encoding.ids
        columns["mask"][row, :size] = 1
        columns["type"][row, :size] = encoding.type_ids
    columns["position"][:] = np.arange(layout.length)
    feeds = []
    for start in range(0, used, layout.batch):
        feed = {}
        for role, spec in layout.roles.items():
            rows = columns[role][start:start + layout.batch]
            feed[spec.name] = np.ascontiguousarray(rows.reshape(layout.shape).astype(_dtype(spec)))
        feeds.append(feed)
    return feeds


def _role(name: str) -> str | None:
    if "mask" in name:
        return "mask"
    if "type" in name or "segment" in name:
        return "type"
    if "position" in name:
        return "position"
    if name in {"ids", "tokens"} or name.endswith("_ids") or "token" in name:
        return "ids"
    return None


def _dtype(spec: TensorSpec) -> np.dtype:
    return np.dtype(spec.dtype if spec.dtype != "unknown" else "int64")


def _text(shape) -> str:
    return "×".join(map(str, shape))
