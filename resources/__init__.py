"""Files shipped with the studio: the built-in sample models.

The sample models are regenerated, byte for byte, by `python resources/make_sample_models.py`.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SAMPLE_MODELS = {
    "transformer": "sample_transformer.onnx",  # int64 input_ids + attention_mask, dynamic batch and sequence
    "cnn": "sample_cnn.onnx",  # float32 NCHW image, dynamic batch
}
DEFAULT_SAMPLE = "transformer"


def sample_model_path(name: str = DEFAULT_SAMPLE) -> Path:
    return Path(str(files(__name__) / "models" / SAMPLE_MODELS[name]))
