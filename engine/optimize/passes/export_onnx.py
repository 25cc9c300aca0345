"""PyTorch → ONNX with the dynamo exporter, dynamic axes kept, so the ONNX passes can follow.

Axis 0 of every input is exported as a dynamic `batch`, and axis 1 of integer
rank-2 inputs (token ids, masks) as a dynamic `sequence`. The example uses batch
2 because torch.export specializes a dim whose example size is 1. Where the
model pins a dim anyway (a reshape to a constant), the exporter keeps it fixed
and the report lists which dims stayed dynamic.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass

import numpy as np

from engine.errors import OptimizationError, first_line
from engine.optimize.passes import onnx_tools
from engine.optimize.passes.base import (
    ModelTraits,
    OnnxArtifact,
    OptimizationPass,
    PassContext,
    PassOutput,
    Stage,
    TorchArtifact,
)
from engine.optimize.passes.torch_modules import check_runs

EXPORT_OPSET = 18
MAX_DYNAMIC_SIZE = 1 << 16


@dataclass(frozen=True)
class ExportConfig:
    opset: int = EXPORT_OPSET
    dynamic_batch: bool = True
    dynamic_sequence: bool = True


class ExportOnnxPass(OptimizationPass):
    name = "export_onnx"
    title = "export to ONNX"
    stage = Stage.EXPORT
    config_type = ExportConfig
    accepts = "torch"
    uses_inputs = True

    def expectations(self, config, traits: ModelTraits, runner) -> list[str]:
        return [f"exports with torch.onnx (dynamo, opset {config.opset}), batch and sequence axes dynamic"]

    def run(self, artifact: TorchArtifact, config: ExportConfig, context: PassContext) -> PassOutput:
        import torch

        module = artifact.module.eval()
        result = check_runs(module, artifact, "the previous steps")
        output_names = ["output"] if isinstance(result, torch.Tensor) else [f"output_{i}" for i in range(len(result))]
        example, dynamic = _example_and_axes(artifact, config)
        context.progress(0.1, "tracing the model with torch.export")
        context.check_cancel()
        notes: list[str] = []
        with _quiet_exporter_logs(), _no_progress_monitor(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                program = torch.onnx.export(
                    module, tuple(torch.from_numpy(example[name]) for name in artifact.input_names),
                    input_names=list(artifact.input_names), output_names=output_names,
                    dynamic_shapes={name: axes for name, axes in dynamic.items()}, opset_version=config.opset,
                    dynamo=True, verbose=False,
                )
            except (torch.onnx.errors.OnnxExporterError, RuntimeError, TypeError, ValueError) as error:
                raise OptimizationError(f"torch.onnx could not export the model: {first_line(error)}") from error
        notes += sorted({f"exporter: {first_line(w.message)}" for w in caught if issubclass(w.category, UserWarning)})
        context.check_cancel()
        context.progress(0.8, "saving the ONNX model")
        proto = program.model_proto
        _strip_debug_metadata(proto)
        onnx_tools.save(proto, context.output_path)
        dynamic_axes = {value.name: [d.dim_param for d in value.type.tensor_type.shape.dim if d.dim_param]
                        for value in proto.graph.input}
        wanted = {name: sorted(str(d) for d in axes.values()) for name, axes in dynamic.items()}
        for name, axes in wanted.items():
            if len(dynamic_axes.get(name, [])) < len(axes):
                notes.append(f"input '{name}': the model fixes some of its dims, so they stay fixed in ONNX")
        report = {"opset": config.opset, "inputs": list(artifact.input_names), "outputs": output_names,
                  "dynamic_dims": dynamic_axes}
        return PassOutput(OnnxArtifact(context.output_path), report, notes)


def _example_and_axes(artifact: TorchArtifact, config: ExportConfig):
    """The example feed (batch 2 where the batch is dynamic) and each input's dynamic axes."""
    import torch

    batch = torch.export.Dim("batch", min=1, max=MAX_DYNAMIC_SIZE)
    sequence = torch.export.Dim("sequence", min=1, max=MAX_DYNAMIC_SIZE)
    example, axes = {}, {}
    for name in artifact.input_names:
        array = artifact.example_feed[name]
        spec = {}
        if config.dynamic_batch and array.ndim >= 1:
            spec[0] = batch
            if array.shape[0] == 1:
                array = np.concatenate([array, array], axis=0)
        token_like = array.ndim == 2 and np.issubdtype(array.dtype, np.integer) and array.shape[1] > 1
        if config.dynamic_sequence and token_like:
            spec[1] = sequence
        example[name] = np.ascontiguousarray(array)
        axes[name] = spec or None
    return example, axes


def _strip_debug_metadata(proto) -> None:
    """The exporter's per-node metadata holds stack traces: dead weight in a deployed model."""
    graph = proto.graph
    for message in [*graph.node, *graph.input, *graph.output, *graph.value_info, *graph.initializer]:
        del message.metadata_props[:]
    del graph.metadata_props[:]


@contextlib.contextmanager
def _quiet_exporter_logs():
    """The exporter logs one warning per optional torchvision op it cannot find; they say nothing about this model."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _no_progress_monitor():
    """torch.fx's interpreter makes (hidden) tqdm bars; their monitor thread would outlive the export."""
    try:
        from tqdm import tqdm
    except ImportError:
        yield
        return
    interval = tqdm.monitor_interval
    tqdm.monitor_interval = 0
    try:
        yield
    finally:
        tqdm.monitor_interval = interval
