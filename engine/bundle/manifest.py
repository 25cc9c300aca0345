"""manifest.json of a deployment bundle: what is in it, how to run it, how well it kept fidelity, how fast it ran.

The manifest is the bundle's contract with whoever deploys it, and with `verify_bundle`: every file with its
sha256, the model's inputs and outputs with their dims, the intended runtime, and the evidence (fidelity report,
benchmark summary) as plain JSON. A figure the studio did not measure is null with a reason, never invented.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.backends import BackendOptions
from engine.bundle.files import (
    BUNDLE_KIND,
    MANIFEST_NAME,
    BundleError,
    bundle_files,
    sha256_of,
)
from engine.device.discovery import DeviceRunner
from engine.model.handle import ModelHandle
from engine.model.tensors import TensorSpec

SCHEMA_VERSION = 1
TOOL_NAME = "open-autoglm-studio"
# What the benchmark summary of the source run may hold; studio.usecases.bundles.run_summary builds it from a stored run.
BENCHMARK_FIELDS = ("run_id", "status", "started_at", "device", "backend", "provider", "provider_options",
                    "samples", "batch_size", "latency_ms", "unreliable_percentiles", "throughput_per_s",
                    "cold_start_ms", "energy", "energy_per_inference_j", "environment", "host", "model_sha256",
                    "inputs")
LATENCY_FIELDS = ("count", "mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")


def benchmark_summary(summary: Mapping[str, Any] | None) -> dict | None:
    """The source run's summary, checked: known fields only, JSON-ready, latency statistics complete."""
    if summary is None:
        return None
    if not isinstance(summary, Mapping):
        raise BundleError(f"the benchmark summary must be a mapping, got {type(summary).__name__}")
    unknown = sorted(set(summary) - set(BENCHMARK_FIELDS))
    if unknown:
        raise BundleError(f"the benchmark summary has unknown field(s) {unknown}; allowed: {list(BENCHMARK_FIELDS)}")
    latency = summary.get("latency_ms")
    if not isinstance(latency, Mapping) or any(name not in latency for name in LATENCY_FIELDS):
        raise BundleError(f"the benchmark summary needs 'latency_ms' with {list(LATENCY_FIELDS)}")
    return _json_ready(dict(summary), "benchmark summary")


def spec_dicts(specs: tuple[TensorSpec, ...]) -> list[dict]:
    return [spec.to_dict() for spec in specs]


def observed_specs(declared: tuple[TensorSpec, ...], arrays: Mapping[str, Any]) -> list[dict]:
    """Declared specs where the model records them; dtypes and shapes seen on the sample run where it does not."""
    by_name = {spec.name: spec for spec in declared}
    specs = []
    for name, array in arrays.items():
        spec = by_name.get(name)
        if spec is not None and spec.dtype != "unknown" and spec.shape is not None:
            specs.append(spec.to_dict())
        else:
            specs.append({"name": name, "dtype": array.dtype.name, "shape": [int(d) for d in array.shape],
                          "observed": "dtype and shape seen on the sample inputs; the model does not record them"})
    return specs


def build_manifest(*, bundled: ModelHandle, source: ModelHandle, bundle_format: str, model_files: tuple[str, ...],
                   inputs: list[dict], outputs: list[dict], runner: DeviceRunner, options: BackendOptions,
                   sample: dict, recipe: dict, optimized: bool, fidelity: dict | None, original: dict | None,
                   benchmark: dict | None, tool_version: str, notes: list[str]) -> dict:
    """Everything but the file list, which is added once every other file is written (`finish_manifest`)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": BUNDLE_KIND,
        "tool": {"name": TOOL_NAME, "version": tool_version},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "name": source.name,
            "format": bundle_format,
            "files": list(model_files),
            "sha256": bundled.sha256,
            "size_bytes": bundled.size_bytes,
            "parameter_count": bundled.parameter_count,
            "inputs": inputs,
            "outputs": outputs,
            "source": {"path": str(source.path), "format": source.format.value, "sha256": source.sha256},
            "original": original,
            "optimized": optimized,
        },
        "runtime": {
            "backend": runner.backend,
            "provider": runner.provider,
            "provider_options": dict(runner.options),
            "session_options": options.to_dict(),
        },
        "sample_inputs": sample,
        "recipe": recipe,
        "fidelity": _json_ready(fidelity, "fidelity report") if fidelity is not None else None,
        "fidelity_unavailable_reason": None if fidelity is not None else (
            "the model is exported as opened, with no optimization, so there is nothing to compare it with"
            if not optimized else "no fidelity report was given for this optimized model"),
        "benchmark": benchmark,
        "benchmark_unavailable_reason": None if benchmark is not None else "no benchmark run was attached",
        "report": None,
        "predict": "predict.py",
        "readme": "README.txt",
        "notes": notes,
        "files": [],
    }


def finish_manifest(manifest: dict, folder: Path) -> dict:
    """The manifest with the sha256 and size of every file written so far (all but the manifest itself).

    Files the manifest already lists are not hashed again: a bundle's weights can be gigabytes.
    """
    known = {entry["path"]: entry for entry in manifest["files"]}
    files = []
    for relative, path in bundle_files(folder):
        if relative == MANIFEST_NAME:
            continue
        if relative not in known:
            digest, size = sha256_of(path)
            known[relative] = {"path": relative, "sha256": digest, "size_bytes": size}
        files.append(known[relative])
    return {**manifest, "files": files}


def manifest_text(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, allow_nan=False) + "\n"


def _json_ready(value: Any, what: str) -> Any:
    """A deep copy that JSON can write strictly: non-finite floats become null, anything else odd is refused."""
    if isinstance(value, Mapping):
        return {str(key): _json_ready(item, what) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item, what) for item in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _json_ready(value.item(), what)
    raise BundleError(f"the {what} holds a {type(value).__name__}, which a manifest cannot store")
