"""Runtimes behind one small protocol: load the model, prepare a session, run a feed, synchronize."""

from __future__ import annotations

from engine.backends.base import Backend, BackendOptions, Session
from engine.errors import BackendError

BACKEND_NAMES = ("onnxruntime", "torch")


def get_backend(name: str) -> Backend:
    if name == "onnxruntime":
        from engine.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend()
    if name == "torch":
        from engine.backends.torch_backend import TorchBackend

        return TorchBackend()
    raise BackendError(f"unknown backend '{name}'; choose one of {', '.join(BACKEND_NAMES)}")


__all__ = ["BACKEND_NAMES", "Backend", "BackendOptions", "Session", "get_backend"]
