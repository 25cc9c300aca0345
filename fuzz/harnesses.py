"""One harness per reader of untrusted bytes: each feeds `data` to the reader and lets through only the typed
errors the CLI turns into one line and exit 2 (`EXPECTED`). Anything else escaping a harness is a finding.

The harnesses import no fuzzer: `make test` runs them over their corpora as regression tests
(tests/fuzz/test_fuzz_corpora.py), and `fuzz/run.py` drives them with atheris.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from engine.errors import EngineError
from profilers.errors import TelemetryError
from storage import StorageError

# What the CLI reports as one line and exit 2 (studio/cli/main.py); anything else is "internal error".
EXPECTED = (EngineError, TelemetryError, StorageError, OSError)


def model_loader(data: bytes) -> None:
    """load_model on a file holding `data` (format told from the content, as for a user's file)."""
    from engine.model.opening import load_model

    with tempfile.TemporaryDirectory(prefix="fuzz-model-") as folder:
        path = Path(folder) / "model.onnx"
        path.write_bytes(data)
        _expect(lambda: load_model(path))


def npz_reader(data: bytes) -> None:
    """The inputs reader on an .npz holding `data`."""
    from engine.model.inputs import InputRequest, prepare_inputs
    from engine.model.tensors import TensorSpec

    with tempfile.TemporaryDirectory(prefix="fuzz-npz-") as folder:
        path = Path(folder) / "inputs.npz"
        path.write_bytes(data)
        specs = [TensorSpec("x", "float32", (1, 4)), TensorSpec("ids", "int64", None)]
        _expect(lambda: prepare_inputs(specs, InputRequest(npz=path)))


def recipe_parser(data: bytes) -> None:
    """A recipe file holding `data`, loaded and planned as `optimize --recipe` does."""
    from engine.optimize.recipe import Recipe

    with tempfile.TemporaryDirectory(prefix="fuzz-recipe-") as folder:
        path = Path(folder) / "recipe.json"
        path.write_bytes(data)
        _expect(lambda: Recipe.load(path).to_dict())


def bundle_manifest(data: bytes) -> None:
    """verify-bundle's file checks on a bundle folder whose manifest.json holds `data`."""
    from engine.bundle.verify import check_files

    with tempfile.TemporaryDirectory(prefix="fuzz-bundle-") as folder:
        root = Path(folder)
        (root / "manifest.json").write_bytes(data)
        (root / "model.onnx").write_bytes(b"\x08\x07")
        (root / "predict.py").write_text("print('never run')\n")
        _expect(lambda: check_files(root))


def stored_samples(data: bytes) -> None:
    """The sample decoder on a stored chunk: the first bytes choose count, codec and layout, the rest is the blob."""
    from storage import packing

    if len(data) < 4:
        return
    count = int.from_bytes(data[:2], "little")
    codec, kind = data[2] % 3, data[3] % 3
    dtype, delta = ((packing.INT64, True), (packing.INT64, False), (packing.FLOAT64, False))[kind]
    _expect(lambda: packing.unpack(data[4:], count, dtype, delta=delta, codec=codec))


HARNESSES: dict[str, Callable[[bytes], None]] = {
    "model_loader": model_loader, "npz_reader": npz_reader, "recipe_parser": recipe_parser,
    "bundle_manifest": bundle_manifest, "stored_samples": stored_samples,
}


def _expect(call: Callable[[], object]) -> None:
    try:
        call()
    except EXPECTED:
        pass
