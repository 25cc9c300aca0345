"""Typed failures of the generative (language model) engine.

They extend the engine's own error classes, so the CLI and the GUI, which already
turn an `EngineError` into one line or a dialog, need no new handling.
"""

from __future__ import annotations

from engine.errors import (
    BackendError,
    DeviceUnavailableError,
    EngineError,
    ModelLoadError,
)


class IncompleteModelFolderError(ModelLoadError):
    """The folder lacks files a causal LM needs (config.json, weight shards), or they are truncated.

    `missing` lists every missing or damaged file, so a partial download can be completed in one go.
    """

    def __init__(self, folder: str, missing: list[str], hint: str = ""):
        self.folder = folder
        self.missing = list(missing)
        text = f"{folder}: not a complete Hugging Face model folder; missing or damaged: {', '.join(missing)}"
        super().__init__(text + (f" ({hint})" if hint else ""))


class DtypeUnsupportedError(DeviceUnavailableError):
    """The device cannot compute in the requested dtype (for example bfloat16 on a pre-Ampere GPU)."""


class GenerationError(BackendError):
    """The model failed while generating (out of memory, a shape it rejects, an unsupported cache layout)."""


class QuantizationUnavailableError(EngineError):
    """A weight-only quantization scheme cannot run here; the message says what to install or change."""


class OnnxGenAIUnavailableError(EngineError):
    """The ONNX Runtime GenAI path cannot be used for this model or on this machine; the message says why."""
