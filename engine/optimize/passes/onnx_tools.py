"""Small ONNX graph utilities the passes share: save, histogram, and the fixes "models in the wild" need."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from engine.errors import OptimizationError, first_line

PROTOBUF_LIMIT = 2_000_000_000  # bytes; larger models must keep their weights in an external file
MIN_QUANTIZATION_OPSET = 13  # DequantizeLinear gets `axis` (per-channel) at opset 13
DENSE_CONSTANT_ATTRIBUTES = ("value", "value_float", "value_floats", "value_int", "value_ints")


def load(path: Path):
    import onnx

    return onnx.load(str(path))


def save(model, path: Path) -> None:
    """Save a model, with its weights beside it in `<name>.data` when it is too big for one protobuf."""
    import onnx

    path = Path(path)
    if model.ByteSize() > PROTOBUF_LIMIT:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + ".data")
    else:
        onnx.save_model(model, str(path))


def op_histogram(model) -> dict[str, int]:
    return dict(Counter(node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
                        for node in model.graph.node))


def default_opset(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def fold_constant_weights(model) -> list[str]:
    """Turn `Constant` nodes of the main graph into initializers; returns the tensor names moved.

    Exporters from some frameworks hold weights in Constant nodes; ONNX Runtime's
    quantizers only quantize initializers ("Expected ... to be an initializer").
    """
    from onnx import helper, numpy_helper

    folded = []
    kept = []
    for node in model.graph.node:
        if node.op_type != "Constant" or node.domain not in ("", "ai.onnx") or len(node.output) != 1:
            kept.append(node)
            continue
        attribute = node.attribute[0] if len(node.attribute) == 1 else None
        if attribute is None or attribute.name not in DENSE_CONSTANT_ATTRIBUTES:
            kept.append(node)  # sparse or string constants stay as they are
            continue
        value = helper.get_attribute_value(attribute)
        if attribute.name == "value":
            tensor = value
            tensor.name = node.output[0]
        else:
            import numpy as np

            dtype = np.float32 if attribute.name.startswith("value_float") else np.int64
            tensor = numpy_helper.from_array(np.asarray(value, dtype=dtype), node.output[0])
        model.graph.initializer.append(tensor)
        folded.append(node.output[0])
    if folded:
        del model.graph.node[:]
        model.graph.node.extend(kept)
    return folded


def upgrade_opset(model, target: int = MIN_QUANTIZATION_OPSET):
    """The model converted to `target` with ONNX's version converter (per-channel QDQ needs opset 13)."""
    import onnx
    from onnx import version_converter

    try:
        converted = version_converter.convert_version(model, target)
        onnx.checker.check_model(converted)
    except (RuntimeError, onnx.checker.ValidationError, ValueError) as error:
        raise OptimizationError(
            f"could not upgrade the model from opset {default_opset(model)} to {target} "
            f"(needed for per-channel quantization): {first_line(error)}"
        ) from error
    return converted
