"""Pass outputs cached by (input, pass, config), with provenance, in the user's cache directory.

An entry is a folder named by the sha256 of its key: the parent's key (which
starts from the source model's sha256), the pass name, its config, and where
they matter the input settings, the device and the library versions. It holds
`provenance.json` (parent, pass, config, times, report) and, for passes that
produce an ONNX file, `model.onnx`. Entries are built in a staging folder and
renamed into place, so a crash or a cancel never leaves a half-written entry.

`AUTOGLM_STUDIO_CACHE` overrides the location (tests point it at tmp_path).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

CACHE_ENV = "AUTOGLM_STUDIO_CACHE"
CACHE_FORMAT = 1
MODEL_FILE = "model.onnx"
PROVENANCE_FILE = "provenance.json"
_KEY_PACKAGES = ("onnx", "onnxruntime", "torch", "torch-pruning", "onnxconverter-common")


def cache_root() -> Path:
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("autoglm-studio")) / "passes"


def library_versions() -> dict[str, str | None]:
    versions = {}
    for name in _KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def step_key(parent_key: str, pass_name: str, config: dict, extra: dict) -> str:
    """The sha256 naming a pass output: same parent, pass, config and context give the same file."""
    text = json.dumps(
        {"format": CACHE_FORMAT, "parent": parent_key, "pass": pass_name, "config": config, "extra": extra,
         "versions": library_versions()},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    folder: Path
    provenance: dict

    @property
    def model_path(self) -> Path | None:
        path = self.folder / MODEL_FILE
        return path if path.is_file() else None


class PassCache:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else cache_root()

    def folder(self, key: str) -> Path:
        return self.root / key[:2] / key

    def lookup(self, key: str, *, needs_model: bool) -> CacheEntry | None:
        folder = self.folder(key)
        try:
            provenance = json.loads((folder / PROVENANCE_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        entry = CacheEntry(folder, provenance)
        if needs_model and entry.model_path is None:
            return None
        return entry

    def staging(self) -> Path:
        """A fresh folder on the cache's file system in which a pass writes its output."""
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))

    def commit(self, key: str, staging: Path, provenance: dict) -> CacheEntry:
        """Move a finished staging folder into place; if another run got there first, keep theirs."""
        (staging / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, default=str), encoding="utf-8")
        final = self.folder(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.replace(staging, final)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not (final / PROVENANCE_FILE).is_file():
                raise
        return CacheEntry(final, provenance)

    @staticmethod
    def discard(staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
