"""`verify-bundle`: is this bundle exactly what the studio wrote, and does its predict.py give the studio's outputs?

Every file is checked against manifest.json (sha256 and size; nothing added, nothing missing, no path outside the
bundle). Nothing in the bundle runs unless asked (`run_predict`): then predict.py runs in a clean interpreter
(engine.bundle.predict_child: `python -I`, a temporary working folder, no network where the system allows it)
on the bundle's sample inputs, and its outputs
must equal, to the bit, what the studio's own backend computes for the same inputs on the same provider with the
same session options.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.progress import Progress
from engine.backends import BackendOptions, get_backend
from engine.bundle.files import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    BundleCancelled,
    BundleVerificationError,
    bundle_files,
    inside_bundle,
    read_manifest,
    sha256_of,
)
from engine.bundle.predict_child import no_network_prefix, run_in_child
from engine.bundle.signing import check_signature
from engine.device.discovery import DeviceRunner
from engine.errors import EngineError, first_line
from engine.model.array_files import ArrayFileError, read_npz
from engine.model.onnx_graphs import walk_graphs
from engine.model.opening import load_model

MAX_ZIP_MEMBERS = 10_000
MAX_EXPANSION = 100  # model weights barely compress: a zip expanding 100-fold is a zip bomb
BOMB_MIN_BYTES = 64 * 2**20  # below this, expansion is harmless whatever its ratio


@dataclass(frozen=True)
class OutputCheck:
    name: str
    dtype: str
    shape: list[int]
    max_abs_diff: float

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": self.shape, "max_abs_diff": self.max_abs_diff}


@dataclass(frozen=True)
class VerificationReport:
    bundle: str
    files_checked: int
    backend: str
    provider: str
    outputs: tuple[OutputCheck, ...]  # empty when predict.py was not run
    notes: tuple[str, ...] = field(default_factory=tuple)
    predict_ran: bool = False
    signed_by: str | None = None  # the public key the signature was checked against; None: not checked

    def to_dict(self) -> dict:
        return {"bundle": self.bundle, "passed": True, "files_checked": self.files_checked, "backend": self.backend,
                "provider": self.provider, "predict_ran": self.predict_ran, "signed_by": self.signed_by,
                "outputs": [o.to_dict() for o in self.outputs], "notes": list(self.notes)}

    def text(self) -> str:
        lines = [f"bundle {self.bundle}: OK",
                 f"  signed by the key of {self.signed_by}: the signature over manifest.json is valid" if self.signed_by
                 else "  signature not checked (--public-key KEY.pub checks who signed it)",
                 f"  {self.files_checked} files match manifest.json (sha256 and size)"]
        if not self.predict_ran:
            lines.append("  predict.py was not run (nothing in the bundle runs unless asked: --run-predict runs it "
                         "in a clean process and compares its outputs with the studio's)")
        else:
            lines.append(f"  predict.py in a clean process gives the studio's outputs on {self.provider}:")
        lines += [f"    {o.name}: {o.dtype} {o.shape}, max abs diff {o.max_abs_diff:g}" for o in self.outputs]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def verify_bundle(path: str | Path, *, inputs: str | Path | None = None, run_predict: bool = False,
                  public_key: Path | None = None, cancel: threading.Event | None = None,
                  progress: Progress | None = None) -> VerificationReport:
    """Check the signature (with `public_key`), the hashes and, with `run_predict`, predict.py against the studio;
    raises BundleVerificationError saying what is wrong. A relative `path` is taken from the current folder."""
    cancel = cancel or threading.Event()
    report = progress or (lambda fraction, message: None)
    shown, path = Path(path), Path(path).absolute()
    if path.is_file():
        with tempfile.TemporaryDirectory(prefix="autoglm-verify-") as folder:
            root = _extract_zip(path, Path(folder))
            return _verify_folder(root, shown, inputs, run_predict, public_key, cancel, report)
    if not path.is_dir():
        raise BundleVerificationError(f"{shown}: no such bundle folder or .zip")
    return _verify_folder(path, shown, inputs, run_predict, public_key, cancel, report)


def check_files(root: Path) -> tuple[dict, int]:
    """The manifest, once every file matches it; a clear error for a changed, added, missing or escaping file."""
    manifest = read_manifest(root)
    listed = manifest.get("files")
    if not isinstance(listed, list) or not listed:
        raise BundleVerificationError(f"{root / MANIFEST_NAME}: lists no files; the manifest was damaged")
    expected: dict[str, dict] = {}
    for entry in listed:
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise BundleVerificationError(f"{root / MANIFEST_NAME}: a file entry {entry!r} lacks a path or sha256")
        inside_bundle(root, entry.get("path"))
        expected[entry["path"]] = entry
    present = {relative: file for relative, file in bundle_files(root) if relative not in (MANIFEST_NAME,
                                                                                             SIGNATURE_NAME)}
    added = sorted(set(present) - set(expected))
    if added:
        raise BundleVerificationError(f"{root}: {', '.join(added)} is not in manifest.json: a file was added "
                                      "after export")
    missing = sorted(set(expected) - set(present))
    if missing:
        raise BundleVerificationError(f"{root}: {', '.join(missing)} is listed in manifest.json but missing")
    for relative, entry in expected.items():
        digest, size = sha256_of(present[relative])
        if digest != entry["sha256"] or size != entry.get("size_bytes"):
            raise BundleVerificationError(
                f"{relative} was modified after export: sha256 {digest[:16]}… ({size:,} bytes), manifest.json says "
                f"{entry['sha256'][:16]}… ({entry.get('size_bytes')} bytes)"
            )
    _check_structure(manifest, root / MANIFEST_NAME)
    for name in [*manifest["model"]["files"], manifest["predict"], manifest["sample_inputs"]["file"]]:
        if name not in expected:
            raise BundleVerificationError(f"{root / MANIFEST_NAME}: names {name!r}, which is not one of its files")
    _check_external_data(root, manifest, set(expected))
    return manifest, len(expected)


def _check_structure(manifest: dict, path: Path) -> None:
    """The fields verification relies on, with the types it relies on, so a damaged manifest fails by name."""
    required = {("model", "files"): list, ("model", "inputs"): list, ("runtime", "backend"): str,
                ("runtime", "provider"): str, ("sample_inputs", "file"): str, ("predict",): str}
    for keys, kind in required.items():
        value = manifest
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if not isinstance(value, kind) or not value:
            raise BundleVerificationError(f"{path}: lacks '{'.'.join(keys)}'; the manifest was damaged")
    if not all(isinstance(spec, dict) and isinstance(spec.get("name"), str) for spec in manifest["model"]["inputs"]):
        raise BundleVerificationError(f"{path}: 'model.inputs' must list inputs by name; the manifest was damaged")


def _verify_folder(root: Path, shown: Path, inputs: str | Path | None, run_predict: bool, public_key: Path | None,
                   cancel: threading.Event, report: Progress) -> VerificationReport:
    if public_key is not None:
        report(0.0, "checking the signature")
        check_signature(root, public_key)
    report(0.05, "checking file hashes")
    manifest, count = check_files(root)
    signed_by = str(public_key) if public_key is not None else None
    _check_cancel(cancel)
    runtime, model = manifest["runtime"], manifest["model"]
    if not run_predict:
        report(1.0, "bundle files verified")
        return VerificationReport(str(shown), count, runtime["backend"], runtime["provider"], (), signed_by=signed_by)
    provider, notes = _provider_here(runtime["backend"], runtime["provider"])
    feed = _load_feed(Path(inputs) if inputs else inside_bundle(root, manifest["sample_inputs"]["file"]),
                      [spec["name"] for spec in model["inputs"]])
    report(0.2, "running predict.py in a clean process")
    isolation = no_network_prefix()
    if not isolation:
        notes.append("predict.py ran with network access: this system cannot take it away (no user namespaces "
                     "for `unshare --net`)")
    with tempfile.TemporaryDirectory(prefix="autoglm-predict-") as work:
        theirs = run_in_child(inside_bundle(root, manifest["predict"]), feed, provider, Path(work), cancel, isolation)
    _check_cancel(cancel)
    report(0.7, "running the model in the studio")
    ours = _studio_outputs(inside_bundle(root, model["files"][0]), runtime, provider, feed)
    checks = _compare(ours, theirs)
    report(1.0, "bundle verified")
    return VerificationReport(str(shown), count, runtime["backend"], provider, checks, tuple(notes), predict_ran=True,
                              signed_by=signed_by)


def _check_external_data(root: Path, manifest: dict, listed: set[str]) -> None:
    """An ONNX model may name weight files anywhere; in a bundle they must be its own listed files."""
    if manifest["model"].get("format") != "onnx":
        return
    import onnx
    from google.protobuf.message import DecodeError

    model_path = inside_bundle(root, manifest["model"]["files"][0])
    try:
        proto = onnx.load(str(model_path), load_external_data=False)
    except (DecodeError, ValueError) as error:
        raise BundleVerificationError(f"{model_path.name}: not a readable ONNX model ({first_line(error)})") from error
    for tensor in (tensor for graph in walk_graphs(proto.graph) for tensor in graph.initializer):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), None)
        inside_bundle(root, location)
        if location not in listed:
            raise BundleVerificationError(f"{model_path.name}: weights in {location!r}, which manifest.json does "
                                          "not list")


def _provider_here(backend: str, provider: str) -> tuple[str, list[str]]:
    """The intended provider if this machine has it, else the CPU (both sides then use the CPU)."""
    if backend == "onnxruntime":
        import onnxruntime

        if provider in onnxruntime.get_available_providers():
            return provider, []
        return "CPUExecutionProvider", [f"{provider} is not available here; both sides ran on CPUExecutionProvider"]
    if provider.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return "cpu", [f"{provider} is not available here; both sides ran on the CPU"]
    return provider, []


def _load_feed(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    try:
        arrays = read_npz(path)
    except (ArrayFileError, OSError) as error:
        raise BundleVerificationError(f"{path}: not a readable .npz of inputs ({first_line(error)})") from error
    missing = [name for name in names if name not in arrays]
    if missing:
        raise BundleVerificationError(f"{path.name}: lacks the model's input(s) {missing}")
    return {name: np.ascontiguousarray(arrays[name]) for name in names}


def _studio_outputs(model_path: Path, runtime: dict, provider: str, feed: dict[str, np.ndarray]) -> dict:
    try:
        handle = load_model(model_path)
        options = BackendOptions(**runtime.get("session_options", {}))
        backend = get_backend(runtime["backend"])
        backend.import_runtime()
        options_here = runtime.get("provider_options", {}) if provider == runtime["provider"] else {}
        session = backend.create_session(backend.load(handle), DeviceRunner(runtime["backend"], provider, options_here),
                                         options)
    except (EngineError, TypeError) as error:
        raise BundleVerificationError(f"the studio could not run the bundled model: {first_line(error)}") from error
    try:
        return session.run(feed)
    finally:
        session.close()


def _compare(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> tuple[OutputCheck, ...]:
    if set(ours) != set(theirs):
        raise BundleVerificationError(f"predict.py gives outputs {sorted(theirs)}, the studio {sorted(ours)}")
    checks = []
    for name, expected in ours.items():
        got = theirs[name]
        if got.dtype != expected.dtype or got.shape != expected.shape:
            raise BundleVerificationError(f"output '{name}': predict.py gives {got.dtype} {list(got.shape)}, "
                                          f"the studio {expected.dtype} {list(expected.shape)}")
        same = np.array_equal(got, expected, equal_nan=np.issubdtype(got.dtype, np.inexact))
        diff = 0.0 if same else float(np.nanmax(np.abs(got.astype(np.float64) - expected.astype(np.float64))))
        if not same:
            raise BundleVerificationError(f"output '{name}': predict.py differs from the studio by up to {diff:g} "
                                          "(max abs diff must be 0 on the same provider)")
        checks.append(OutputCheck(name, got.dtype.name, [int(d) for d in got.shape], diff))
    return tuple(checks)


def _extract_zip(path: Path, folder: Path) -> Path:
    """Unpack a zipped bundle member by member, refusing links and any name that would land outside `folder`."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise BundleVerificationError(f"{path}: neither a bundle folder nor a readable .zip ({error})") from error
    with archive:
        members = archive.infolist()
        _check_zip_size(path, members, folder)
        tops = set()
        for member in members:
            if stat.S_ISLNK(member.external_attr >> 16):
                raise BundleVerificationError(f"{path}: holds a symbolic link {member.filename!r}; refusing it")
            name = member.filename.rstrip("/")
            target = inside_bundle(folder, name)
            tops.add(name.split("/")[0])
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            with archive.open(member) as source, target.open("wb") as sink:
                while block := source.read(1 << 20):
                    written += len(block)
                    if written > member.file_size:
                        raise BundleVerificationError(f"{path}: {member.filename!r} is larger than the zip declares; "
                                                      "refusing it")
                    sink.write(block)
    if len(tops) != 1:
        raise BundleVerificationError(f"{path}: a zipped bundle holds one folder; this one holds {sorted(tops)}")
    return folder / tops.pop()


def _check_zip_size(path: Path, members: list[zipfile.ZipInfo], folder: Path) -> None:
    """Before anything is extracted: a bounded member count, room on disk, and no zip-bomb expansion."""
    if len(members) > MAX_ZIP_MEMBERS:
        raise BundleVerificationError(f"{path}: {len(members):,} members (a bundle has a handful; at most "
                                      f"{MAX_ZIP_MEMBERS:,})")
    declared = sum(member.file_size for member in members)
    compressed = sum(member.compress_size for member in members)
    if declared > BOMB_MIN_BYTES and declared > MAX_EXPANSION * max(compressed, 1):
        raise BundleVerificationError(f"{path}: would expand {compressed:,} bytes into {declared:,} (over "
                                      f"{MAX_EXPANSION}×): not a bundle the studio wrote; refusing it")
    free = shutil.disk_usage(folder).free
    if declared > free:
        raise BundleVerificationError(f"{path}: needs {declared / 2**30:,.1f} GiB to extract, and {folder} has "
                                      f"{free / 2**30:,.1f} GiB free")


def _check_cancel(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise BundleCancelled("verification cancelled")
