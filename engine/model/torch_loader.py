"""Open PyTorch models: TorchScript, torch.export programs, factories and (trusted) pickles."""

from __future__ import annotations

import importlib.util
import inspect
import pickle
import sys
import warnings
from collections import Counter
from pathlib import Path

from engine import runtime_logs
from engine.device.discovery import torch_installed
from engine.errors import (
    CorruptModelError,
    ModelLoadError,
    UnsupportedModelError,
    UntrustedModelError,
    first_line,
)
from engine.model.handle import ModelFormat, ModelHandle, hash_files
from engine.model.tensors import TensorSpec

_SHAPE_NOTE = ("{kind} records no input shapes or dtypes: shapes come from --shape NAME=DIMS, dtypes from "
               "--inputs FILE.npz (synthetic inputs are float32)")


NO_TORCH = "needs PyTorch, which this installation leaves out: install torch==2.13.0, or convert the model to ONNX"


def require_torch(what: str) -> None:
    """A clear error, not a bare ModuleNotFoundError, where PyTorch is absent (the ONNX-only desktop build)."""
    if not torch_installed():
        raise UnsupportedModelError(f"{what} {NO_TORCH}")


def load_torch_file(path: Path, model_format: ModelFormat, *, trust_pickle: bool) -> ModelHandle:
    require_torch(f"{path}: a {model_format.value} model")
    if model_format is ModelFormat.TORCH_EXPORT:
        return _describe_export(path)
    module = load_module(path, model_format, trust_pickle=trust_pickle)
    if model_format is ModelFormat.TORCHSCRIPT:
        arguments = [a.name for a in module.forward.schema.arguments][1:]  # drop self
        ops = Counter(node.kind() for node in module.inlined_graph.nodes() if not node.kind().startswith("prim::"))
        return _describe_module(path, model_format, module, arguments, ops, _SHAPE_NOTE.format(kind="TorchScript"))
    ops = Counter(type(m).__name__ for m in module.modules() if not list(m.children()))
    return _describe_module(path, model_format, module, _forward_arguments(module), ops,
                            _SHAPE_NOTE.format(kind="A pickled module"), trusted=True)


def load_factory(path: Path, function: str) -> ModelHandle:
    require_torch(f"{path}:{function}: a factory")
    module = call_factory(path, function)
    ops = Counter(type(m).__name__ for m in module.modules() if not list(m.children()))
    return _describe_module(path, ModelFormat.TORCH_FACTORY, module, _forward_arguments(module), ops,
                            _SHAPE_NOTE.format(kind="A factory"), factory_function=function)


def load_module(path: Path, model_format: ModelFormat, *, trust_pickle: bool = False, function: str | None = None):
    """The runnable `nn.Module` behind a model file, on the CPU, in eval mode."""
    import torch

    if model_format is ModelFormat.TORCH_FACTORY:
        return call_factory(path, function or "")
    if model_format is ModelFormat.TORCH_EXPORT:
        return _load_export(path).module()
    if model_format is ModelFormat.TORCHSCRIPT:
        try:
            with warnings.catch_warnings():  # TorchScript is deprecated upstream, yet it is what the user has
                warnings.simplefilter("ignore", DeprecationWarning)
                return torch.jit.load(str(path), map_location="cpu").eval()
        except RuntimeError as error:
            raise CorruptModelError(f"{path}: damaged TorchScript file ({first_line(error)})") from error
    return _load_pickle(path, trust_pickle)


def call_factory(path: Path, function: str):
    """Run the user's own factory code, which is what they asked for."""
    import torch

    module_name = f"_autoglm_factory_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"{path}: cannot be imported as Python")
    namespace = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = namespace
    try:
        spec.loader.exec_module(namespace)
        factory = getattr(namespace, function, None)
        if not callable(factory):
            raise ModelLoadError(f"{path}: has no function '{function}'")
        model = factory()
    except (ModelLoadError, KeyboardInterrupt):
        raise
    except BaseException as error:  # noqa: BLE001 - the user's code may raise anything, sys.exit() included;
        # report it, with its traceback under --debug
        raise ModelLoadError(f"{path}:{function} raised {type(error).__name__}: {first_line(error)}") from error
    finally:
        sys.modules.pop(module_name, None)
    if not isinstance(model, torch.nn.Module):
        raise ModelLoadError(f"{path}:{function} returned {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def _load_pickle(path: Path, trust_pickle: bool):
    import torch

    try:
        content = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not trust_pickle:
            raise UntrustedModelError(
                f"{path}: holds pickled Python objects; unpickling can run arbitrary code, so it is refused. "
                "Save the model with torch.export or TorchScript, or pass --trust-pickle if you trust this file"
            ) from error
        try:
            content = torch.load(str(path), map_location="cpu", weights_only=False)
        except Exception as inner:  # unpickling a trusted file can fail in any way its classes choose
            raise CorruptModelError(f"{path}: could not be unpickled ({type(inner).__name__}: {first_line(inner)})") from inner
    except (RuntimeError, EOFError, ValueError) as error:
        raise CorruptModelError(f"{path}: damaged torch.save file ({first_line(error)})") from error
    if isinstance(content, torch.nn.Module):
        return content.eval()
    if isinstance(content, dict):
        raise UnsupportedModelError(
            f"{path}: holds a state_dict (weights only, no architecture); give a factory "
            "file.py:function that builds the module and loads these weights"
        )
    raise UnsupportedModelError(f"{path}: holds a {type(content).__name__}, not a torch.nn.Module")


def _load_export(path: Path):
    import torch

    with runtime_logs.captured() as logged:  # torch logs the reason, then raises "check the warnings above"
        try:
            return torch.export.load(str(path))
        except (RuntimeError, KeyError, ValueError, EOFError, AssertionError) as error:
            reason = logged[-1].splitlines()[0] if logged else first_line(error)
            raise CorruptModelError(f"{path}: damaged torch.export file ({reason})") from error


def _describe_export(path: Path) -> ModelHandle:
    program = _load_export(path)
    signature = program.graph_signature
    nodes = {node.name: node for node in program.graph.nodes}
    bounds = {}
    for symbol, value_range in program.range_constraints.items():
        upper = None if not value_range.upper.is_finite else int(value_range.upper)
        bounds[str(symbol)] = (int(value_range.lower), upper)
    parameters = sum(program.state_dict[name].numel() for name in signature.parameters if name in program.state_dict)
    ops = Counter(
        str(node.target).removesuffix(".default")
        for node in program.graph.nodes
        if node.op == "call_function"
    )
    sha256, size = hash_files([path])
    return ModelHandle(
        path=path,
        format=ModelFormat.TORCH_EXPORT,
        sha256=sha256,
        size_bytes=size,
        inputs=tuple(_fake_tensor_spec(name, nodes[name]) for name in signature.user_inputs),
        outputs=tuple(_fake_tensor_spec(name, nodes[name]) for name in signature.user_outputs if name in nodes),
        parameter_count=int(parameters),
        op_histogram=dict(ops),
        files=(path,),
        dim_bounds=bounds,
        notes=("symbolic dims are torch.export symbols; their allowed ranges come from the program",) if bounds else (),
    )


def _fake_tensor_spec(name: str, node) -> TensorSpec:
    value = node.meta.get("val")
    if value is None or not hasattr(value, "shape"):
        return TensorSpec(name, "unknown", None)
    shape = tuple(int(d) if isinstance(d, int) or str(d).lstrip("-").isdigit() else str(d) for d in value.shape)
    return TensorSpec(name, str(value.dtype).removeprefix("torch."), shape)


def _describe_module(path, model_format, module, arguments, ops, note, *, trusted=False, factory_function=None) -> ModelHandle:
    sha256, size = hash_files([path])
    return ModelHandle(
        path=path,
        format=model_format,
        sha256=sha256,
        size_bytes=size,
        inputs=tuple(TensorSpec(name, "unknown", None) for name in arguments),
        outputs=(TensorSpec("output", "unknown", None),),
        parameter_count=int(sum(p.numel() for p in module.parameters())),
        op_histogram=dict(ops),
        files=(path,),
        factory_function=factory_function,
        trusted=trusted,
        notes=(note,),
    )


def _forward_arguments(module) -> list[str]:
    parameters = inspect.signature(module.forward).parameters.values()
    names = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not names:
        raise UnsupportedModelError(f"{type(module).__name__}.forward takes no named tensor arguments")
    return names

