"""The environment fingerprint stored with every result, so runs from different setups are never silently compared."""

from __future__ import annotations

import os
import platform
from importlib import metadata

from engine.device.cpu_info import cpu_info

FINGERPRINT_PACKAGES = ("numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-genai",
                        "torch", "transformers", "tokenizers", "safetensors", "bitsandbytes", "openvino")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ORT_NUM_THREADS")


def fingerprint(session_description: dict) -> dict:
    return {
        "cpu": cpu_info().to_dict(),
        "os": platform.platform(),
        "hostname": platform.node(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in FINGERPRINT_PACKAGES if _version(name)},
        "thread_environment": {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ},
        "session": session_description,
    }


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
