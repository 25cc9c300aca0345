"""Files of a deployment bundle: typed errors, paths that cannot leave the bundle, hashes, and atomic staging.

A bundle is built in a hidden folder next to its target and renamed into place only when complete, so a crash,
a cancel or a full disk never leaves half a bundle where the user expects one. Every path read from a manifest
or a zip member goes through `inside_bundle`, because a bundle may come from anywhere and a crafted
`../../.bashrc` must never be read, hashed or written.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath

from core import bounded_json
from engine.errors import EngineError

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.json.sig"  # engine.bundle.signing: over manifest.json, so not listed in it
BUNDLE_KIND = "open-autoglm-studio deployment bundle"
STAGING_SUFFIX = ".partial"
OWNER_FILE = ".owner"  # in a staging folder: the exporting process's pid and start time
STALE_UNOWNED_S = 600.0


class BundleError(EngineError):
    """A bundle could not be written or read; nothing half-written is left behind."""


class BundleExistsError(BundleError):
    """The target exists and the user did not ask to replace it."""


class BundleCancelled(BundleError):
    """The user stopped the export; nothing was written."""


class BundleVerificationError(BundleError):
    """A bundle failed verification: a file was changed, added or removed, or its outputs differ."""


def inside_bundle(root: Path, relative: object) -> Path:
    """The file `relative` names inside `root`, or a BundleVerificationError if it could point anywhere else."""
    if not isinstance(relative, str) or not relative or "\x00" in relative or "\\" in relative:
        raise BundleVerificationError(f"the bundle names an invalid file path {relative!r}; refusing to use it")
    posix, windows = PurePosixPath(relative), PureWindowsPath(relative)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or ".." in posix.parts or relative != str(posix):
        raise BundleVerificationError(
            f"the bundle names the path {relative!r}, which is outside the bundle folder; refusing to use it "
            "(the bundle was crafted or tampered with)"
        )
    candidate = root / posix
    for step in (candidate, *candidate.parents):
        if step == root:
            break
        if step.is_symlink():
            raise BundleVerificationError(f"the bundle's {relative!r} goes through a symbolic link; refusing to use it")
    if not candidate.resolve().is_relative_to(root.resolve()):
        raise BundleVerificationError(f"the bundle's {relative!r} resolves outside the bundle folder; refusing it")
    return candidate


def sha256_of(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def bundle_files(root: Path) -> Iterator[tuple[str, Path]]:
    """Every file under `root` as (posix relative path, path), sorted; links are refused, never followed."""
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            raise BundleVerificationError(f"the bundle holds a symbolic link {path.relative_to(root).as_posix()!r}; "
                                          "bundles hold plain files only")
        if path.is_file():
            yield path.relative_to(root).as_posix(), path


def read_manifest(root: Path) -> dict:
    path = root / MANIFEST_NAME
    if not path.is_file() or path.is_symlink():
        raise BundleVerificationError(f"{root}: no {MANIFEST_NAME}; this is not a deployment bundle")
    try:
        manifest = bounded_json.read_json_file(path)
    except bounded_json.BoundedJsonError as error:
        raise BundleVerificationError(f"{path}: {error}; the manifest was damaged") from error
    if not isinstance(manifest, dict) or manifest.get("kind") != BUNDLE_KIND:
        raise BundleVerificationError(f"{path}: not the manifest of an Open-AutoGLM Studio deployment bundle")
    return manifest


def is_replaceable_bundle(target: Path) -> bool:
    """Only a bundle we wrote (or an empty folder) may be replaced with --force: other data is never deleted."""
    if target.is_symlink():
        return False
    if target.is_dir():
        if not any(target.iterdir()):
            return True
        try:
            read_manifest(target)
        except BundleVerificationError:
            return False
        return True
    if target.is_file() and zipfile.is_zipfile(target):
        try:
            with zipfile.ZipFile(target) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return False
        return any(PurePosixPath(name).name == MANIFEST_NAME and len(PurePosixPath(name).parts) == 2 for name in names)
    return False


def check_target(target: Path, force: bool) -> None:
    """Fail before any work when the target cannot (or may not) be written."""
    if not target.parent.is_dir():
        raise BundleError(f"{target}: the folder {target.parent} does not exist")
    if target.exists() or target.is_symlink():
        if not force:
            raise BundleExistsError(f"{target} already exists; pass --force to replace it, or choose another path")
        if not is_replaceable_bundle(target):
            raise BundleExistsError(f"{target} exists and is not a deployment bundle; it is never replaced, "
                                    "even with --force: choose another path")


class Staging:
    """A hidden folder beside the target; `commit` renames the finished result into place, any failure removes it."""

    def __init__(self, target: Path):
        self.target = target
        remove_stale_staging(target)
        self.root = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=STAGING_SUFFIX, dir=target.parent))
        (self.root / OWNER_FILE).write_text(f"{os.getpid()} {_started(os.getpid())}")

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def commit(self, built: Path, force: bool) -> None:
        """Move `built` (inside the staging folder) to the target; an old bundle goes only once the new one is whole."""
        check_target(self.target, force)
        previous = None
        if self.target.exists():
            previous = self.root / "previous"
            os.replace(self.target, previous)
        try:
            os.replace(built, self.target)
        except OSError:
            if previous is not None:
                os.replace(previous, self.target)
            raise


def remove_stale_staging(target: Path) -> list[Path]:
    """Staging folders an interrupted export to `target` left (kill -9, power loss): those whose exporting process
    is gone. A folder without an owner note is left for STALE_UNOWNED_S, in case its export has just begun."""
    removed = []
    for folder in target.parent.glob(f".{glob.escape(target.name)}.*{STAGING_SUFFIX}"):
        if folder.is_dir() and not folder.is_symlink() and not _owner_alive(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _owner_alive(folder: Path) -> bool:
    try:
        pid, started = (folder / OWNER_FILE).read_text().split()
        return _started(int(pid)) == started
    except (OSError, ValueError):
        try:
            return time.time() - folder.stat().st_mtime < STALE_UNOWNED_S
        except OSError:
            return True


def _started(pid: int) -> str:
    """When process `pid` started (a reused pid gives another time), or "gone"."""
    import psutil

    try:
        return f"{psutil.Process(pid).create_time():.3f}"
    except psutil.Error:
        return "gone"


def disk_error(error: OSError, where: str) -> BundleError:
    """An OSError as a message a user can act on, saying that nothing was left behind."""
    reason = "the disk is full" if error.errno in (errno.ENOSPC, errno.EDQUOT) else (error.strerror or str(error))
    return BundleError(f"could not write the bundle ({where}): {reason}; nothing was written")
