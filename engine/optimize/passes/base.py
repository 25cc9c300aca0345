"""The contract every optimization pass follows, and what flows between passes.

A pass is a subclass of `OptimizationPass`; defining it registers it, and its `stage`
places it in the pipeline. Its config is a frozen dataclass whose knobs describe
themselves (engine.optimize.params); the recipe section named by `section` is built
from those knobs, and the section's selector picks which of its passes runs. A pass
says what to expect *before* it runs (`expectations`), then `run`s on one artifact
(a PyTorch module or an ONNX file) and returns the next one with a report. Long work
checks the cancel token at least once per unit of work and reports progress as a
fraction of its own share.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from core.progress import Progress
from engine.device.discovery import DeviceRunner
from engine.errors import OptimizationCancelled, OptimizationError
from engine.model.handle import ModelFormat, ModelHandle

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
    runner: DeviceRunner
    inputs: Any  # engine.optimize.passes.model_inputs.ModelInputs: example, calibration and fidelity feeds
    source_specs: Any  # engine.optimize.passes.model_inputs.FeedSpecs of the source model (PyTorch passes use it)
    threads: int | None = None  # intra-op threads for timings (auto mode); None: the runtime's default

    def progress(self, fraction: float, message: str) -> None:
        self.report_progress(min(max(fraction, 0.0), 1.0), message)

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise OptimizationCancelled("optimization cancelled; nothing was written")


class Stage(IntEnum):
    """Where a pass runs (DESIGN.md §3): prune → low-rank → export to ONNX → ONNX clean-up → graph → quantize."""

    PRUNE = 1
    LOW_RANK = 2
    EXPORT = 3
    CLEAN_UP = 4
    GRAPH = 5
    QUANTIZE = 6


@dataclass(frozen=True)
class PassSection:
    """A recipe section whose selector picks which of its passes runs; "none" runs none of them."""

    name: str
    title: str
    help: str  # what the selector chooses
    selector: str = "method"
    flag: str | None = None  # the selector's command-line spelling where it is not --<section>-<selector>
    aliases: dict[str, str] = field(default_factory=dict, compare=False)  # command-line shorthands for values


PRUNING = PassSection("pruning", "Pruning", "channel and head pruning (structured) or L1 sparsity (unstructured); "
                      "needs a PyTorch module", flag="--prune")
LOW_RANK = PassSection("low_rank", "Low-rank", "SVD factorization of Linear weights: keep a rank ratio or an energy "
                       "share; needs a PyTorch module")
GRAPH = PassSection("graph", "Graph", "ONNX Runtime graph optimization level, saved as a step", selector="level")
QUANTIZATION = PassSection("quantization", "Quantization", "INT8 (dynamic or static QDQ), FP16, or auto (measured "
                           "within the accuracy budget)", flag="--quantize",
                           aliases={"dynamic": "dynamic_int8", "static": "static_int8"})

_PASSES: dict[str, type[OptimizationPass]] = {}


class OptimizationPass:
    """Base of every pass: subclasses set the class attributes and implement `run`; subclassing registers them."""

    name: ClassVar[str]
    title: ClassVar[str]  # shown in progress messages and reports
    stage: ClassVar[Stage]
    config_type: ClassVar[type]  # a frozen dataclass; its knobs make up the pass's part of `section`
    accepts: ClassVar[str]  # "torch" or "onnx": the artifact kind it runs on
    section: ClassVar[PassSection | None] = None  # None: the plan adds the pass where the artifacts need it
    choices: ClassVar[dict[str, str]] = {}  # the selector values that run it, with their labels
    requires: ClassVar[tuple[str, ...]] = ()  # passes that must run before it
    uses_inputs: ClassVar[bool] = False  # its output depends on input shapes / calibration data
    uses_device: ClassVar[bool] = False  # its output depends on timings on the chosen device
    weight: ClassVar[float] = 1.0  # share of the progress bar, relative to other passes

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name in _PASSES:
            raise TypeError(f"two optimization passes are named '{cls.name}': {_PASSES[cls.name]} and {cls}")
        _PASSES[cls.name] = cls

    def expectations(self, config, traits: ModelTraits, runner: DeviceRunner) -> list[str]:
        """What this setting will and will not do here, said before it runs."""
        return []

    def run(self, artifact: Artifact, config, context: PassContext) -> PassOutput:
        raise NotImplementedError


def registered() -> dict[str, type[OptimizationPass]]:
    """Every pass, in the order they run (by stage; passes of one stage are alternatives, in definition order)."""
    return dict(sorted(_PASSES.items(), key=lambda item: item[1].stage))


def get_pass(name: str) -> OptimizationPass:
    if name not in _PASSES:
        raise OptimizationError(f"unknown optimization pass '{name}'; known: {', '.join(registered())}")
    return _PASSES[name]()


def config_dict(config) -> dict:
    return asdict(config)
