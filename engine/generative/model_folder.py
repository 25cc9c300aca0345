"""Check a Hugging Face model folder before transformers sees it.

transformers quietly fills weights it cannot find with random values and points
at the hub when a file is missing; a user with a half-copied folder would then
benchmark noise. So every file the folder needs is checked here first (config,
safetensors shards listed by the index, each shard's header and length) and all
problems are reported at once. Reads only JSON and safetensors headers: no torch.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ModelNotFoundError, UnsupportedModelError
from engine.generative.errors import IncompleteModelFolderError
from engine.model.handle import hash_files

CONFIG_FILE = "config.json"
SINGLE_WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json",)
_HEADER_LENGTH_BYTES = 8
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit


@dataclass(frozen=True)
class ModelFolder:
    path: Path
    config: dict
    weight_files: tuple[Path, ...]
    tensor_count: int
    size_bytes: int
    sha256: str | None  # over config.json and the weight files, in order; None when not asked for
    has_tokenizer: bool

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", "unknown"))

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "model_type": self.model_type,
            "architectures": list(self.config.get("architectures") or []),
            "weight_files": [p.name for p in self.weight_files],
            "tensor_count": self.tensor_count,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "has_tokenizer": self.has_tokenizer,
        }


def check_model_folder(folder: str | Path, *, compute_hash: bool = False) -> ModelFolder:
    """The folder's config and weight files, or an error naming everything that is missing or damaged."""
    path = Path(folder).expanduser()
    if not path.exists():
        raise ModelNotFoundError(f"{path}: no such folder")
    if not path.is_dir():
        raise UnsupportedModelError(f"{path}: is a file; give the model folder (with config.json and safetensors)")
    path = path.resolve()
    missing: list[str] = []
    config = _read_config(path, missing)
    weight_files, tensor_count = _check_weights(path, missing)
    if missing:
        hint = ""
        if not weight_files and any((path / name).exists() for name in PICKLED_WEIGHTS):
            hint = ("the folder has only pickled weights (pytorch_model.bin), which can run code when loaded; "
                    "save the model with safetensors (save_pretrained(..., safe_serialization=True))")
        raise IncompleteModelFolderError(str(path), missing, hint)
    files = [path / CONFIG_FILE, *weight_files]
    sha256, size = hash_files(files) if compute_hash else (None, sum(f.stat().st_size for f in files))
    return ModelFolder(
        path=path,
        config=config,
        weight_files=tuple(weight_files),
        tensor_count=tensor_count,
        size_bytes=size,
        sha256=sha256,
        has_tokenizer=all((path / name).is_file() for name in TOKENIZER_FILES),
    )


def _read_config(folder: Path, missing: list[str]) -> dict:
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        missing.append(CONFIG_FILE)
        return {}
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        missing.append(f"{CONFIG_FILE} (unreadable JSON: {error})")
        return {}
    if not isinstance(config, dict) or "model_type" not in config:
        missing.append(f"{CONFIG_FILE} (has no model_type)")
        return {}
    return config


def _check_weights(folder: Path, missing: list[str]) -> tuple[list[Path], int]:
    """The safetensors files the model loads from, each checked against its header; problems go to `missing`."""
    index_path = folder / WEIGHTS_INDEX
    if index_path.is_file():
        return _check_sharded(folder, index_path, missing)
    single = folder / SINGLE_WEIGHTS
    if not single.is_file():
        missing.append(f"{SINGLE_WEIGHTS} (or {WEIGHTS_INDEX} with its shards)")
        return [], 0
    names = _safetensors_tensor_names(single, missing)
    return ([single], len(names)) if names is not None else ([], 0)


def _check_sharded(folder: Path, index_path: Path, missing: list[str]) -> tuple[list[Path], int]:
    try:
        weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
        if not isinstance(weight_map, dict):
            raise TypeError("weight_map is not an object")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        missing.append(f"{WEIGHTS_INDEX} (unreadable: {error})")
        return [], 0
    wanted: dict[str, set[str]] = {}
    for tensor, shard in weight_map.items():
        wanted.setdefault(str(shard), set()).add(str(tensor))
    files: list[Path] = []
    count = 0
    for shard in sorted(wanted):
        shard_path = folder / shard
        if not shard_path.is_file():
            missing.append(shard)
            continue
        names = _safetensors_tensor_names(shard_path, missing)
        if names is None:
            continue
        absent = wanted[shard] - names
        if absent:
            missing.append(f"{shard} (lacks {len(absent)} tensors the index lists, e.g. {sorted(absent)[0]})")
            continue
        files.append(shard_path)
        count += len(names)
    return files, count


def _safetensors_tensor_names(path: Path, missing: list[str]) -> set[str] | None:
    """Tensor names from the header, after checking that the file holds every byte the header points at."""
    size = path.stat().st_size
    try:
        with path.open("rb") as stream:
            prefix = stream.read(_HEADER_LENGTH_BYTES)
            if len(prefix) < _HEADER_LENGTH_BYTES:
                raise ValueError("shorter than a safetensors header")
            (header_length,) = struct.unpack("<Q", prefix)
            if header_length > min(_MAX_HEADER_BYTES, size - _HEADER_LENGTH_BYTES):
                raise ValueError("header length runs past the end of the file")
            header = json.loads(stream.read(header_length).decode("utf-8"))
        data_end = max((int(entry["data_offsets"][1]) for name, entry in header.items() if name != "__metadata__"),
                       default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error) as error:
        missing.append(f"{path.name} (not a readable safetensors file: {error})")
        return None
    expected = _HEADER_LENGTH_BYTES + header_length + data_end
    if size < expected:
        missing.append(f"{path.name} (truncated: {size} of {expected} bytes)")
        return None
    return {name for name in header if name != "__metadata__"}
