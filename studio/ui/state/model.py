"""The open model and the inputs the user chose for it: what every run, optimization and MAC count starts from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.model.dim_roles import DimRole, dynamic_dims
from engine.model.handle import ModelHandle
from engine.model.image_samples import ImageNormalization, parse_channel_values
from engine.model.inputs import InputRequest, parse_dims
from engine.model.sample_data import SampleOptions


@dataclass(frozen=True)
class InputChoice:
    """Sizes of the symbolic dims, shapes typed for inputs the format records none of, or real data (an .npz, a
    folder of images with their normalization, a .txt with a tokenizer); a seed."""

    dims: Mapping[str, int] = field(default_factory=dict)
    shapes: Mapping[str, str] = field(default_factory=dict)  # as typed, e.g. "1x3x224x224"; parsed at request time
    data: str | None = None  # None: synthetic inputs
    seed: int = 0
    tokenizer: str = ""  # for a .txt: a tokenizer.json or a Hugging Face folder
    image_divisor: float = 255.0
    image_mean: str = "0"  # as typed: one value, or one per channel
    image_std: str = "1"
    channel_order: str = "rgb"

    def sample_options(self) -> SampleOptions:
        """How images or text become inputs; a mistyped mean or std raises InputError (one line)."""
        normalization = ImageNormalization(self.image_divisor, parse_channel_values(self.image_mean, "image mean"),
                                           parse_channel_values(self.image_std, "image std"), self.channel_order)
        return SampleOptions(Path(self.tokenizer.strip()) if self.tokenizer.strip() else None, normalization)

    @classmethod
    def defaults_for(cls, handle: ModelHandle) -> InputChoice:
        """No dim sizes: the engine chooses each one and says where it came from, until the user sets it."""
        return cls(shapes={spec.name: "" for spec in handle.inputs if spec.shape is None})


@dataclass(frozen=True)
class OpenModel:
    handle: ModelHandle
    inputs: InputChoice

    @property
    def location(self) -> str:
        """What `usecases.open_model` reopens: the path, with `:factory` for a Python model file."""
        handle = self.handle
        return f"{handle.path}:{handle.factory_function}" if handle.factory_function else str(handle.path)

    def with_inputs(self, inputs: InputChoice) -> OpenModel:
        return replace(self, inputs=inputs)

    def input_request(self, batch: int) -> InputRequest:
        """The request a use case takes; a mistyped shape raises InputError here, before anything runs."""
        choice = self.inputs
        if choice.data is not None:
            return InputRequest(npz=Path(choice.data.strip()), seed=choice.seed, samples=choice.sample_options())
        shapes = {name: parse_dims(text) for name, text in choice.shapes.items() if text.strip()}
        has_batch_dim = any(dim.role is DimRole.BATCH for dim in dynamic_dims(self.handle.inputs).values())
        return InputRequest(shapes=shapes, dims=dict(choice.dims), batch=batch if has_batch_dim or batch != 1 else None,
                            seed=choice.seed)


def settable_dims(handle: ModelHandle) -> list[str]:
    """The symbolic dims a user sizes on the model card; the batch dims are sized in the run settings."""
    return sorted(key for key, dim in dynamic_dims(handle.inputs).items() if dim.role is not DimRole.BATCH)
