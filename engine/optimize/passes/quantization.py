"""INT8 (dynamic, static QDQ) and FP16 passes on ONNX models, with ONNX Runtime's and onnxconverter-common's tools.

Both INT8 passes run `quant_pre_process` first (shape inference and basic graph
clean-up, as ONNX Runtime recommends). Where its symbolic shape inference fails
on a model from the wild, that step is skipped with a note instead of failing.
The functions `quantize_dynamic_model` and `quantize_static_model` are shared
with the auto pass, which calls them once per candidate.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.progress import Progress
from engine.device.cpu_info import cpu_info
from engine.errors import OptimizationCancelled, OptimizationError, first_line
from engine.optimize.params import boolean, choice, from_recipe, names, number
from engine.optimize.passes import onnx_tools
from engine.optimize.passes.base import (
    QUANTIZATION,
    ModelTraits,
    OnnxArtifact,
    OptimizationPass,
    PassContext,
    PassOutput,
    Stage,
)
from engine.optimize.passes.calibration import calibration_reader
from engine.optimize.passes.model_inputs import FeedSpecs

QUANTIZED_OP_MARKERS = ("Integer", "QLinear", "QuantizeLinear", "DynamicQuantize", "QGemm", "QAttention")
GPU_PROVIDERS = ("CUDAExecutionProvider", "ROCMExecutionProvider", "DmlExecutionProvider")
SYMBOLIC_LEFTOVER = "sym_shape_infer_temp.onnx"  # written to the working directory by ONNX Runtime on failure


def _per_channel():
    return boolean(False, "per-channel INT8 weights (one scale per output channel)", flag="--per-channel")


@dataclass(frozen=True)
class Int8Config:
    """The knobs every INT8 pass reads."""

    reduce_range: bool = boolean(False, "7-bit weights: helps accuracy on CPUs without VNNI")
    nodes_to_exclude: tuple[str, ...] = names("nodes kept in FP32")


@dataclass(frozen=True)
class DynamicInt8Config(Int8Config):
    per_channel: bool = _per_channel()
    op_types_to_quantize: tuple[str, ...] = names("op types to quantize, e.g. MatMul to keep Conv in FP32; "
                                                  "empty: every type ONNX Runtime can")


@dataclass(frozen=True)
class CalibratedInt8Config(Int8Config):
    """The knobs of the INT8 passes that calibrate activations on data (static and auto)."""

    calibration_method: str = choice("minmax", ("minmax", "entropy", "percentile"),
                                     "how activation ranges are chosen from the calibration data",
                                     flag="--calibration-method")
    percentile: float = number(99.999, 90.0, 100.0, "the percentile kept, for calibration method percentile",
                               low_open=True)
    activation_type: str = choice("uint8", ("uint8", "int8"), "the integer type of quantized activations")
    calibration_samples: int = from_recipe("calibration.samples")


@dataclass(frozen=True)
class StaticInt8Config(CalibratedInt8Config):
    per_channel: bool = _per_channel()


@dataclass(frozen=True)
class Fp16Config:
    keep_io_types: bool = boolean(True, "model inputs and outputs stay float32")
    op_block_list: tuple[str, ...] | None = names("op types kept in FP32; empty: onnxconverter-common's default list",
                                                  optional=True)


@contextlib.contextmanager
def quantizer_log_notes() -> Iterator[list[str]]:
    """Collect what ONNX Runtime's quantization tools log on the root logger, for the step's notes.

    They warn once per tensor (e.g. per-channel axes that do not apply to LayerNorm weights), which floods a
    terminal; the notes keep each distinct message once, with its count. Other records pass through untouched.
    """
    seen: Counter[str] = Counter()

    def keep(record: logging.LogRecord) -> bool:
        if "onnxruntime" in record.pathname and "quantization" in record.pathname and record.levelno >= logging.WARNING:
            seen[record.getMessage()] += 1
            return False
        return True

    notes: list[str] = []
    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield notes
    finally:
        root.removeFilter(keep)
        notes.extend(f"onnxruntime: {message}" + (f" (×{count})" if count > 1 else "")
                     for message, count in list(seen.items())[:5])
        if len(seen) > 5:
            notes.append(f"onnxruntime: {len(seen) - 5} more distinct warning(s)")


def ort_errors() -> tuple[type[BaseException], ...]:
    """What ONNX Runtime raises when a model cannot be loaded or run (calibration runs the model)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return (state.Fail, state.InvalidArgument, state.InvalidGraph, state.InvalidProtobuf, state.NoSuchFile,
            state.NotImplemented, state.RuntimeException, state.EPFail)


def pre_process(source: Path, target: Path) -> list[str]:
    """ONNX Runtime's quant_pre_process; symbolic shape inference skipped (with a note) where it fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    leftover = Path.cwd() / SYMBOLIC_LEFTOVER
    leftover_existed = leftover.exists()
    try:
        quant_pre_process(str(source), str(target))
        return []
    # SymbolicShapeInference raises bare Exception ("Incomplete symbolic shape inference") and assertion
    # errors on graphs it cannot follow; the retry below still fails loudly for any other cause.
    except Exception as error:  # noqa: BLE001
        symbolic_failure = f"{type(error).__name__}: {first_line(error)}"
        if not leftover_existed:
            _remove_symbolic_leftover(leftover)
    try:
        quant_pre_process(str(source), str(target), skip_symbolic_shape=True)
    except (RuntimeError, ValueError, OSError, *ort_errors()) as error:
        raise OptimizationError(f"quantization pre-processing failed: {first_line(error)}") from error
    return [f"symbolic shape inference failed in quant_pre_process ({symbolic_failure}); "
            "skipped that step and used ONNX shape inference only"]


def _remove_symbolic_leftover(path: Path) -> None:
    """On failure, symbolic shape inference saves its partial model (and weights) in the working directory."""
    if not path.is_file():
        return
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
        locations = {entry.value for tensor in model.graph.initializer for entry in tensor.external_data
                     if entry.key == "location"}
    except (OSError, ValueError):
        locations = set()
    for location in locations:
        data = path.parent / location
        if data.parent == path.parent:
            data.unlink(missing_ok=True)
    path.unlink(missing_ok=True)


def _check_op_types(source: Path, asked: Sequence[str]) -> None:
    """An op type the model does not have would quantize nothing and still look like a result: refuse it."""
    import onnx

    present = set(onnx_tools.op_histogram(onnx.load(str(source), load_external_data=False)))
    missing = [op for op in asked if op not in present]
    if missing:
        raise OptimizationError(f"quantization.op_types_to_quantize names op types this model does not have: "
                                f"{', '.join(missing)} (it has {', '.join(sorted(present))})")


def quantize_dynamic_model(source: Path, target: Path, config: DynamicInt8Config) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    _check_op_types(source, config.op_types_to_quantize)
    try:
        quantize_dynamic(str(source), str(target), per_channel=config.per_channel, reduce_range=config.reduce_range,
                         weight_type=QuantType.QInt8, nodes_to_exclude=list(config.nodes_to_exclude),
                         op_types_to_quantize=list(config.op_types_to_quantize))
    except (RuntimeError, ValueError, KeyError, AssertionError, *ort_errors()) as error:
        raise OptimizationError(f"dynamic quantization failed: {first_line(error)}") from error


def quantize_static_model(source: Path, target: Path, config: StaticInt8Config, samples: Sequence[dict],
                          cancel: threading.Event, progress: Progress,
                          calibration_cache: Path | None = None) -> None:
    """QDQ static quantization; `calibration_cache` lets several variants share one calibration run."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[config.calibration_method]
    extra = {"CalibPercentile": config.percentile} if config.calibration_method == "percentile" else {}
    if config.per_channel:
        # ONNX Runtime's per-channel weight adjustment for int32 biases crashes on a rank-2 bias (Keras
        # exports such as magika's); without it the weights keep their own scales, which is what per-channel means.
        extra["QDQDisableWeightAdjustForInt32Bias"] = True
    reader = calibration_reader(samples, cancel, progress)
    try:
        quantize_static(
            str(source), str(target), reader, quant_format=QuantFormat.QDQ, per_channel=config.per_channel,
            reduce_range=config.reduce_range,
            activation_type=QuantType.QUInt8 if config.activation_type == "uint8" else QuantType.QInt8,
            weight_type=QuantType.QInt8, nodes_to_exclude=list(config.nodes_to_exclude), calibrate_method=method,
            extra_options=extra, calibration_cache_path=str(calibration_cache) if calibration_cache else None,
        )
    except OptimizationCancelled:
        raise
    except (RuntimeError, ValueError, KeyError, AssertionError, IndexError, *ort_errors()) as error:
        raise OptimizationError(
            f"static quantization failed during calibration or conversion: {first_line(error)}; "
            "check the calibration data and the input shapes (--shape/--dim) it was made with"
        ) from error


def quantization_report(before: Path, after: Path) -> dict:
    ops = onnx_tools.op_histogram(onnx_tools.load(after))
    quantized = {op: n for op, n in ops.items() if any(marker in op for marker in QUANTIZED_OP_MARKERS)}
    return {"size_before": before.stat().st_size, "size_after": after.stat().st_size, "ops_after": ops,
            "quantized_ops": quantized}


def int8_expectations(traits: ModelTraits, runner, *, dynamic: bool, quantizes_conv: bool = True) -> list[str]:
    notes = []
    if runner.provider in GPU_PROVIDERS:
        notes.append(f"{runner.provider} has no fast INT8 kernels (ONNX Runtime runs INT8 on GPUs through TensorRT): "
                     "expect it to be slower than FP32 there")
    if dynamic and quantizes_conv and traits.conv_dominated:
        notes.append("this model is mostly convolutions: dynamic INT8 turns Conv into ConvInteger, which ONNX "
                     "Runtime's CPU provider usually runs slower than FP32; static_int8 or auto measure the "
                     "alternative")
    if not dynamic and traits.matmul_count > 0 and traits.conv_count == 0:
        notes.append("for MatMul-heavy (transformer-like) models dynamic INT8 is often faster than static QDQ; "
                     "auto measures both")
    return notes


class DynamicInt8Pass(OptimizationPass):
    name = "dynamic_int8"
    title = "dynamic INT8 quantization"
    stage = Stage.QUANTIZE
    section = QUANTIZATION
    choices = {"dynamic_int8": "Dynamic INT8"}
    requires = ("prepare_onnx",)
    config_type = DynamicInt8Config
    accepts = "onnx"

    def expectations(self, config, traits: ModelTraits, runner) -> list[str]:
        quantizes_conv = not config.op_types_to_quantize or "Conv" in config.op_types_to_quantize
        return int8_expectations(traits, runner, dynamic=True, quantizes_conv=quantizes_conv)

    def run(self, artifact: OnnxArtifact, config: DynamicInt8Config, context: PassContext) -> PassOutput:
        prepared = context.work_dir / "prepared.onnx"
        with quantizer_log_notes() as logged:
            context.progress(0.1, "quant_pre_process")
            notes = pre_process(artifact.path, prepared)
            context.check_cancel()
            context.progress(0.5, "quantizing weights to INT8")
            quantize_dynamic_model(prepared, context.output_path, config)
        report = quantization_report(artifact.path, context.output_path)
        return PassOutput(OnnxArtifact(context.output_path), report, notes + logged)


class StaticInt8Pass(OptimizationPass):
    name = "static_int8"
    title = "static INT8 quantization (QDQ)"
    stage = Stage.QUANTIZE
    section = QUANTIZATION
    choices = {"static_int8": "Static INT8 (QDQ)"}
    requires = ("prepare_onnx",)
    config_type = StaticInt8Config
    accepts = "onnx"
    uses_inputs = True
    weight = 2.0

    def expectations(self, config, traits: ModelTraits, runner) -> list[str]:
        notes = int8_expectations(traits, runner, dynamic=False)
        flags = set(cpu_info().isa_flags)
        has_vnni = bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})
        if runner.provider == "CPUExecutionProvider" and not config.reduce_range and not has_vnni:
            if flags & {"avx2", "avx512f"}:
                notes.append("this CPU has no VNNI: 8-bit products can saturate; set reduce_range if accuracy suffers")
        return notes

    def run(self, artifact: OnnxArtifact, config: StaticInt8Config, context: PassContext) -> PassOutput:
        prepared = context.work_dir / "prepared.onnx"
        samples = context.inputs.calibration_samples(FeedSpecs.of_onnx(artifact.path), config.calibration_samples)
        with quantizer_log_notes() as logged:
            context.progress(0.02, "quant_pre_process")
            notes = pre_process(artifact.path, prepared)
            context.check_cancel()
            quantize_static_model(prepared, context.output_path, config, samples, context.cancel,
                                  lambda f, m: context.progress(0.05 + 0.9 * f, m))
        context.check_cancel()
        notes.append(f"calibrated ({config.calibration_method}) on {len(samples)} sample(s): "
                     f"{context.inputs.describe_calibration(config.calibration_samples)}")
        report = quantization_report(artifact.path, context.output_path)
        return PassOutput(OnnxArtifact(context.output_path), report, notes + logged)


class Fp16Pass(OptimizationPass):
    name = "fp16"
    title = "FP16 conversion"
    stage = Stage.QUANTIZE
    section = QUANTIZATION
    choices = {"fp16": "FP16"}
    requires = ("prepare_onnx",)
    config_type = Fp16Config
    accepts = "onnx"
    weight = 0.5

    def expectations(self, config, traits: ModelTraits, runner) -> list[str]:
        if runner.provider == "CPUExecutionProvider":
            return ["FP16 on the CPU provider is slower than FP32 (most CPU kernels are FP32, so ONNX Runtime "
                    "adds casts); it halves the file size, and pays off on GPUs"]
        return []

    def run(self, artifact: OnnxArtifact, config: Fp16Config, context: PassContext) -> PassOutput:
        from onnxconverter_common import float16

        model = onnx_tools.load(artifact.path)
        default = float16.DEFAULT_OP_BLOCK_LIST
        block_list = list(config.op_block_list) if config.op_block_list is not None else list(default)
        context.progress(0.2, "converting weights and ops to FP16")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                converted = float16.convert_float_to_float16(model, keep_io_types=config.keep_io_types,
                                                             op_block_list=block_list)
            except (RuntimeError, ValueError, KeyError) as error:
                raise OptimizationError(f"FP16 conversion failed: {first_line(error)}") from error
        onnx_tools.save(converted, context.output_path)
        notes = sorted({f"onnxconverter-common: {first_line(w.message)}" for w in caught})
        report = {**quantization_report(artifact.path, context.output_path), "op_block_list": block_list,
                  "keep_io_types": config.keep_io_types}
        return PassOutput(OnnxArtifact(context.output_path), report, notes)
