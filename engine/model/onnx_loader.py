"""Read an ONNX file's signature, size and op mix without running it."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from engine.errors import (
    CorruptModelError,
    InvalidModelError,
    ModelLoadError,
    UnsupportedModelError,
    first_line,
)
from engine.model.dim_roles import with_metadata_hints
from engine.model.handle import ModelFormat, ModelHandle, hash_files
from engine.model.onnx_graphs import walk_graphs
from engine.model.onnx_parameters import count_parameters
from engine.model.tensors import Dim, TensorSpec


def load_onnx(path: Path) -> ModelHandle:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except DecodeError as error:
        raise CorruptModelError(f"{path}: not a readable ONNX file (truncated or not ONNX at all: {error})") from error
    external_files = _external_data_files(path, model)  # before the checker: its messages on these are vaguer
    try:  # by path (it reaches external data and models over 2 GiB); a path ONNX cannot take as text, by proto
        onnx.checker.check_model(str(path) if _utf8(str(path)) else model)
    except onnx.checker.ValidationError as error:
        raise InvalidModelError(f"{path}: fails the ONNX checker: {first_line(error)}") from error
    except UnicodeDecodeError as error:  # the checker's message quotes a name that is not UTF-8
        raise InvalidModelError(f"{path}: fails the ONNX checker, on text that is not UTF-8 ({error.reason} at "
                                f"byte {error.start})") from error

    graph = model.graph
    sha256, size = hash_files([path, *external_files])
    initializer_names = {tensor.name for tensor in graph.initializer}
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    inputs = with_metadata_hints([_spec(value) for value in graph.input if value.name not in initializer_names], metadata)
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    return ModelHandle(
        path=path,
        format=ModelFormat.ONNX,
        sha256=sha256,
        size_bytes=size,
        inputs=inputs,
        outputs=tuple(_spec(value) for value in graph.output),
        parameter_count=count_parameters(graph),
        op_histogram=dict(Counter(_op_name(node) for g in walk_graphs(graph) for node in g.node)),
        files=(path, *external_files),
        index_bounds=_index_bounds(graph, {spec.name for spec in inputs}),
        metadata=metadata,
        notes=(f"opset {opsets}; producer {model.producer_name or 'unknown'} {model.producer_version}".strip(),),
    )


def _spec(value) -> TensorSpec:
    import onnx

    name = _text(value.name, "a model input/output name")
    if not value.type.HasField("tensor_type"):
        raise UnsupportedModelError(f"model input/output '{name}' is not a tensor; only tensor inputs are supported")
    tensor_type = value.type.tensor_type
    if tensor_type.elem_type == onnx.TensorProto.UNDEFINED:
        raise UnsupportedModelError(f"model input/output '{name}' has no element type")
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name
    except KeyError:
        raise InvalidModelError(f"model input/output '{name}' has element type {tensor_type.elem_type}, which ONNX "
                                "does not define") from None
    shape: tuple[Dim, ...] | None = None
    if tensor_type.HasField("shape"):
        shape = tuple(_dim(d) for d in tensor_type.shape.dim)
    return TensorSpec(name, dtype, shape)


def _dim(dim) -> Dim:
    """A size, a name, or None for an open dim without a real name: a dim_value <= 0 (Paddle writes -1) is
    open, not a size, and a dim_param such as '?' or '' names nothing, so two of them are not one dim."""
    if dim.HasField("dim_value"):
        return dim.dim_value if dim.dim_value > 0 else None
    if dim.HasField("dim_param") and re.search(r"[A-Za-z]", _text(dim.dim_param, "a dim name")):
        return dim.dim_param
    return None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not UTF-8 reaches Python as surrogate escapes
        return False
    return True


def _text(value: str | bytes, what: str) -> str:
    """A string field of the model; protobuf hands over the raw bytes of one that is not valid UTF-8."""
    if isinstance(value, bytes):
        raise InvalidModelError(f"{what} is not UTF-8 text ({value[:40]!r})")
    return value


def _op_name(node) -> str:
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"


def _index_bounds(graph, input_names: set[str]) -> dict[str, int]:
    """Vocabulary sizes of embedding tables indexed directly by a model input."""
    tables = {t.name: t.dims[0] for t in graph.initializer if len(t.dims) >= 1}
    bounds: dict[str, int] = {}
    for node in graph.node:
        if node.op_type == "Gather" and len(node.input) == 2:
            table, indices = node.input
            if indices in input_names and table in tables:
                bounds[indices] = min(bounds.get(indices, tables[table]), tables[table])
    return bounds


def _byte_count(info: dict[str, str], key: str, tensor: str) -> int:
    text = info.get(key, "0")
    if not (text.isascii() and text.isdigit()):
        raise InvalidModelError(f"tensor '{tensor}': external-data {key} {text[:40]!r} is not a byte count")
    return int(text)


def _external_data_files(path: Path, model) -> list[Path]:
    """Every external data file the model refers to, checked to exist, fit, and stay beside the model."""
    import onnx

    folder = path.parent.resolve()
    files: dict[Path, None] = {}
    for graph in walk_graphs(model.graph):
        for tensor in graph.initializer:
            if tensor.data_location != onnx.TensorProto.EXTERNAL:
                continue
            info = {_text(entry.key, "an external-data key"): _text(entry.value, "an external-data value")
                    for entry in tensor.external_data}
            if "\0" in info.get("location", ""):
                raise InvalidModelError(f"{path}: tensor '{tensor.name}' names an external data file with a NUL byte")
            location = (folder / info.get("location", "")).resolve()
            if not location.is_relative_to(folder) or location == folder:
                raise InvalidModelError(f"{path}: tensor '{tensor.name}' points at external data outside the model folder")
            if not location.is_file():
                raise ModelLoadError(f"{path}: external data file '{info.get('location')}' for tensor '{tensor.name}' is missing")
            end = _byte_count(info, "offset", tensor.name) + _byte_count(info, "length", tensor.name)
            if location.stat().st_size < end:
                raise CorruptModelError(f"{path}: external data file '{location.name}' is truncated (needs {end} bytes)")
            files[location] = None
    return sorted(files)
