"""PyTorch eager execution on the CPU or a CUDA device."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from engine.backends.base import BackendOptions
from engine.device.discovery import DeviceRunner
from engine.errors import BackendError, first_line
from engine.model.handle import ModelFormat, ModelHandle
from engine.model.torch_loader import load_module, require_torch


class TorchBackend:
    name = "torch"

    def import_runtime(self) -> None:
        require_torch("the torch backend")
        import torch  # noqa: F401

    def load(self, handle: ModelHandle):
        if handle.format is ModelFormat.ONNX:
            raise BackendError(f"the torch backend runs PyTorch models; {handle.name} is ONNX: use --backend onnxruntime")
        module = load_module(handle.path, handle.format, trust_pickle=handle.trusted, function=handle.factory_function)
        return module, tuple(spec.name for spec in handle.inputs)

    def create_session(self, loaded, runner: DeviceRunner, options: BackendOptions) -> TorchSession:
        import torch

        module, input_names = loaded
        device = torch.device(runner.provider)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise BackendError(f"{runner.provider}: this torch build has no CUDA support")
        previous_threads = torch.get_num_threads()
        if options.threads:
            torch.set_num_threads(options.threads)
        try:
            module = module.to(device)
        except RuntimeError as error:
            torch.set_num_threads(previous_threads)
            raise BackendError(f"could not move the model to {device}: {first_line(error)}") from error
        return TorchSession(module, input_names, device, options, previous_threads)


# What a failing forward of a well-behaved model raises; the run loops turn these into BackendError.
RUN_ERRORS = (RuntimeError, ValueError, TypeError, IndexError)


class UserCodeError(RuntimeError):
    """The user's forward raised something no run loop expects: another exception, SystemExit, or its own
    BaseException subclass. Made a run error, so it ends the run with one line like any failing forward."""


def guarded_forward(module):
    """`module(*tensors)`, where only KeyboardInterrupt and the expected run errors pass through unchanged."""
    def call(*tensors):
        try:
            return module(*tensors)
        except (KeyboardInterrupt, *RUN_ERRORS):
            raise
        except BaseException as error:  # noqa: BLE001 - user code: sys.exit(), or anything it likes to raise
            raise UserCodeError(f"the model's forward raised {type(error).__name__}: {first_line(error)}") from error
    return call


class TorchSession:
    def __init__(self, module, input_names: tuple[str, ...], device, options: BackendOptions, previous_threads: int):
        import torch

        self._module = guarded_forward(module)
        self._input_names = input_names
        self._device = device
        self._previous_threads = previous_threads
        self._grad_mode = torch.inference_mode if options.inference_mode else torch.no_grad
        self.needs_sync = device.type == "cuda"
        self.run_errors = RUN_ERRORS
        self.description = {
            "runtime": "torch",
            "torch_version": torch.__version__,
            "device": str(device),
            "intra_op_threads": torch.get_num_threads(),
            "inference_mode": options.inference_mode,
        }

    def _tensors(self, feed: Mapping[str, np.ndarray]) -> list:
        import torch

        return [torch.from_numpy(np.ascontiguousarray(feed[name])).to(self._device) for name in self._input_names]

    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = self._tensors(feed)
        try:
            with self._grad_mode():
                result = self._module(*tensors)
        except self.run_errors as error:
            raise BackendError(f"the model failed to run: {first_line(error)}") from error
        return _outputs_to_numpy(result)

    def bind(self, feed: Mapping[str, np.ndarray]):
        tensors = self._tensors(feed)
        module, grad_mode = self._module, self._grad_mode

        def call():
            with grad_mode():
                return module(*tensors)

        return call

    def synchronize(self) -> None:
        if self.needs_sync:
            import torch

            torch.cuda.synchronize(self._device)

    def close(self) -> None:
        import torch

        torch.set_num_threads(self._previous_threads)
        self._module = None


def _outputs_to_numpy(result) -> dict[str, np.ndarray]:
    import torch

    if isinstance(result, torch.Tensor):
        return {"output": result.detach().cpu().numpy()}
    if isinstance(result, Mapping):
        return {str(k): v.detach().cpu().numpy() for k, v in result.items() if isinstance(v, torch.Tensor)}
    if isinstance(result, (tuple, list)):
        return {f"output_{i}": v.detach().cpu().numpy() for i, v in enumerate(result) if isinstance(v, torch.Tensor)}
    raise BackendError(f"the model returned {type(result).__name__}; expected tensors")
