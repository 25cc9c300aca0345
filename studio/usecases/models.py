"""What there is to run on and to run: this machine's devices, an opened model, its MAC count, the built-in samples."""

from __future__ import annotations

from engine.device import discovery as device_discovery
from engine.device.discovery import Device
from engine.model.handle import ModelFormat, ModelHandle
from engine.model.inputs import InputRequest, prepare_inputs
from engine.model.macs import count_macs
from engine.model.opening import load_model
from studio.resources import SAMPLE_MODELS, sample_model_path


def list_devices() -> list[Device]:
    return device_discovery.discover()


def open_model(location: str, *, trust_pickle: bool = False) -> ModelHandle:
    return load_model(location, trust_pickle=trust_pickle)


def model_macs(handle: ModelHandle, inputs: InputRequest) -> str:
    """Multiply-accumulates per inference at the shapes `inputs` binds, as the model card shows them (never a speed
    claim); counted afresh on every call, so a change of dims gives the MACs at the new shapes."""
    if handle.format is not ModelFormat.ONNX:
        return "counted on ONNX graphs only: optimize exports this model to ONNX"
    shapes = {name: array.shape for name, array in prepare_inputs(
        handle.inputs, inputs, index_bounds=handle.index_bounds, dim_bounds=handle.dim_bounds).feed.items()}
    report = count_macs(handle.path, shapes)
    shown = ", ".join(f"{name} {'×'.join(map(str, shape))}" for name, shape in shapes.items())
    by_op = ", ".join(f"{op} {count}" for op, count in report.unknown_by_op().items())
    unknown = f"; {report.unknown} layer(s) not counted ({by_op})" if report.unknown else ""
    total = f"{report.total / 1e6:,.1f} M" if report.total >= 100_000 else f"{report.total:,}"  # never "0.0 M"
    return f"{total} at {shown}{unknown}"


def sample_models() -> dict[str, str]:
    """The built-in sample models by short name, as paths."""
    return {name: str(sample_model_path(name)) for name in SAMPLE_MODELS}
