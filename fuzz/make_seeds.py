"""Writes the seed corpora of fuzz/harnesses.py into fuzz/corpus/NAME (small, deterministic files; committed).

    .venv/bin/python fuzz/make_seeds.py
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.bundle.files import BUNDLE_KIND  # noqa: E402
from engine.optimize.recipe import Recipe  # noqa: E402
from storage import packing  # noqa: E402
from tests.conftest import linear_onnx  # noqa: E402
from tests.wild import awkward_models  # noqa: E402

CORPUS = ROOT / "fuzz" / "corpus"


def models() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        paths = {"linear.onnx": linear_onnx(work / "linear.onnx"),
                 "paddle_style.onnx": awkward_models.paddle_style_classifier(work / "paddle.onnx"),
                 "opset12.onnx": awkward_models.opset12_export(work / "opset12.onnx"),
                 "if_node.onnx": awkward_models.branching_model(work / "if.onnx"),
                 "scalar_input.onnx": awkward_models.scalar_rate_model(work / "scalar.onnx"),
                 "mixed_outputs.onnx": awkward_models.mixed_dtype_outputs(work / "mixed.onnx")}
        seeds = {name: path.read_bytes() for name, path in paths.items()}
    seeds["truncated.onnx"] = seeds["linear.onnx"][: len(seeds["linear.onnx"]) // 2]
    return seeds


def npz_files() -> dict[str, bytes]:
    def archive(compressed: bool = False, **arrays) -> bytes:
        stream = io.BytesIO()
        (np.savez_compressed if compressed else np.savez)(stream, **arrays)
        return stream.getvalue()

    x, ids = np.arange(4, dtype=np.float32).reshape(1, 4), np.arange(6, dtype=np.int64).reshape(1, 6)
    return {"inputs.npz": archive(x=x, ids=ids), "compressed.npz": archive(True, x=x, ids=ids),
            "wrong_dtype.npz": archive(x=x.astype(np.float64), ids=ids), "scalar.npz": archive(x=x, ids=np.array(3))}


def recipes() -> dict[str, bytes]:
    return {"default.json": Recipe().to_json().encode(),
            "dynamic.json": b'{"quantization": {"method": "dynamic_int8"}, "budget": {"min_cosine": 0.99}}',
            "static.json": b'{"quantization": {"method": "static_int8", "per_channel": true}, '
                           b'"calibration": {"samples": 8, "image_mean": [0.5], "image_std": ["0.25"]}}'}


def manifests() -> dict[str, bytes]:
    files = {"model.onnx": b"\x08\x07", "predict.py": b"print('never run')\n"}  # what the harness writes
    entries = [{"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}
               for name, data in files.items()]
    manifest = {"kind": BUNDLE_KIND, "files": entries, "predict": "predict.py",
                "model": {"files": ["model.onnx"], "format": "onnx", "inputs": [{"name": "x"}]},
                "runtime": {"backend": "onnxruntime", "provider": "CPUExecutionProvider"},
                "sample_inputs": {"file": "model.onnx"}}
    return {"manifest.json": json.dumps(manifest).encode(), "not_a_bundle.json": b'{"kind": "x"}'}


def sample_chunks() -> dict[str, bytes]:
    def chunk(values, kind: int) -> bytes:
        dtype, delta = ((packing.INT64, True), (packing.INT64, False), (packing.FLOAT64, False))[kind]
        return len(values).to_bytes(2, "little") + bytes([packing.CODEC_SHUFFLE_ZLIB, kind]) + packing.pack(
            np.asarray(values), dtype, delta=delta)

    return {"timestamps": chunk(np.arange(0, 5000, 50), 0), "latencies": chunk([120_000, 118_500, 130_000], 1),
            "values": chunk([41.5, 42.0, 43.25], 2)}


def main() -> None:
    for name, seeds in {"model_loader": models(), "npz_reader": npz_files(), "recipe_parser": recipes(),
                        "bundle_manifest": manifests(), "stored_samples": sample_chunks()}.items():
        folder = CORPUS / name
        folder.mkdir(parents=True, exist_ok=True)
        for file_name, data in seeds.items():
            (folder / file_name).write_bytes(data)
    print(f"seeds written under {CORPUS}")


if __name__ == "__main__":
    main()
