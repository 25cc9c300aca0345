"""The contract every optimization pass follows, and what flows between passes.

A pass is a registered class with a typed, frozen config built from the recipe.
It says what to expect *before* it runs (`expectations`), then `run`s on one
artifact (a PyTorch module or an ONNX file) and returns the next one with a
report. Long work checks the cancel token at least once per unit of work and
reports progress as a fraction of its own share.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from core.progress import Progress
from engine.device.discovery import DeviceRunner
from engine.errors import OptimizationCancelled
from engine.model.handle import ModelFormat, ModelHandle
from engine.optimize.recipe import Recipe

MODULE_FORMATS = (ModelFormat.TORCH_FACTORY, ModelFormat.TORCH_PICKLE)
CONV_OPS = frozenset({"Conv", "ConvTranspose", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d"})
MATMUL_OPS = frozenset({"MatMul", "Gemm", "Linear"})


@dataclass
class TorchArtifact:
    """A live `nn.Module` between the PyTorch passes; never cached (only its ONNX export is)."""

    module: Any
    input_names: tuple[str, ...]
    example_feed: dict[str, np.ndarray]
    kind: ClassVar[str] = "torch"


@dataclass
class OnnxArtifact:
    path: Path
    kind: ClassVar[str] = "onnx"


Artifact = TorchArtifact | OnnxArtifact


@dataclass
class PassOutput:
    artifact: Artifact
    report: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModelTraits:
    """What the passes need to know about a model to say, before running, whether they can help."""

    format: ModelFormat
    op_histogram: dict[str, int]

    @classmethod
    def of(cls, handle: ModelHandle) -> ModelTraits:
        return cls(handle.format, dict(handle.op_histogram))

    @property
    def has_module(self) -> bool:
        return self.format in MODULE_FORMATS

    @property
    def conv_count(self) -> int:
        return sum(count for op, count in self.op_histogram.items() if op in CONV_OPS)

    @property
    def matmul_count(self) -> int:
        return sum(count for op, count in self.op_histogram.items() if op in MATMUL_OPS)

    @property
    def conv_dominated(self) -> bool:
        return self.conv_count > 0 and self.conv_count >= self.matmul_count


@dataclass
class PassContext:
    """Everything a pass may use besides its artifact and config."""

    cancel: threading.Event
    report_progress: Progress
    work_dir: Path  # private scratch space, removed after the pass
    output_path: Path  # where an ONNX-producing pass writes its model
    recipe: Recipe
    runner: DeviceRunner
    inputs: Any  # engine.optimize.passes.model_inputs.ModelInputs: example, calibration and fidelity feeds
    source_specs: Any  # engine.optimize.passes.model_inputs.FeedSpecs of the source model (PyTorch passes use it)
    threads: int | None = None  # intra-op threads for timings (auto mode); None: the runtime's default

    def progress(self, fraction: float, message: str) -> None:
        self.report_progress(min(max(fraction, 0.0), 1.0), message)

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise OptimizationCancelled("optimization cancelled; nothing was written")


class OptimizationPass:
    """Base of every pass: subclasses set the class attributes and implement `run`."""

    name: ClassVar[str]
    title: ClassVar[str]  # shown in progress messages and reports
    config_type: ClassVar[type]
    accepts: ClassVar[str]  # "torch" or "onnx": the artifact kind it runs on
    uses_inputs: ClassVar[bool] = False  # its output depends on input shapes / calibration data
    uses_device: ClassVar[bool] = False  # its output depends on timings on the chosen device
    weight: ClassVar[float] = 1.0  # share of the progress bar, relative to other passes

    @classmethod
    def config_from_recipe(cls, recipe: Recipe, runner: DeviceRunner):
        raise NotImplementedError

    def expectations(self, config, traits: ModelTraits, runner: DeviceRunner) -> list[str]:
        """What this setting will and will not do here, said before it runs."""
        return []

    def run(self, artifact: Artifact, config, context: PassContext) -> PassOutput:
        raise NotImplementedError


def config_dict(config) -> dict:
    return asdict(config)
