import os
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.backends import BackendOptions, get_backend  # noqa: E402
from engine.device.discovery import DeviceRunner  # noqa: E402
from engine.errors import (  # noqa: E402
    BackendError,
    CorruptModelError,
    ModelLoadError,
    UnsupportedModelError,
    UntrustedModelError,
)
from engine.model.handle import ModelFormat
from engine.model.opening import load_model  # noqa: E402

CPU = DeviceRunner("torch", "cpu")


class Scale(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, features):
        return torch.relu(self.linear(features))


def _module() -> Scale:
    torch.manual_seed(0)
    return Scale().eval()


def _run(handle, feed):
    backend = get_backend("torch")
    session = backend.create_session(backend.load(handle), CPU, BackendOptions(threads=1))
    try:
        return session.run(feed)
    finally:
        session.close()


FEED = {"features": np.ones((3, 4), dtype=np.float32)}


def test_torchscript(tmp_path):
    # setup
    path = tmp_path / "model.pt"
    torch.jit.trace(_module(), torch.ones(1, 4)).save(str(path))
    # execute
    handle = load_model(path)
    outputs = _run(handle, FEED)
    # assert
    assert handle.format is ModelFormat.TORCHSCRIPT
    assert [s.name for s in handle.inputs] == ["features"]
    assert handle.inputs[0].shape is None and "--shape" in handle.notes[0]
    assert handle.parameter_count == 10
    assert handle.op_histogram.get("aten::linear") == 1
    np.testing.assert_allclose(outputs["output"], _module()(torch.ones(3, 4)).detach().numpy(), rtol=1e-6)


def test_torch_export_program(tmp_path):
    path = tmp_path / "model.pt2"
    batch = torch.export.Dim("batch", min=2, max=64)
    program = torch.export.export(_module(), (torch.ones(2, 4),), dynamic_shapes={"features": {0: batch}})
    torch.export.save(program, str(path))

    handle = load_model(path)

    assert handle.format is ModelFormat.TORCH_EXPORT
    spec = handle.inputs[0]
    assert spec.name == "features" and spec.dtype == "float32"
    assert isinstance(spec.shape[0], str) and spec.shape[1] == 4
    assert handle.dim_bounds[spec.shape[0]] == (2, 64)
    assert handle.parameter_count == 10
    assert "aten.linear" in handle.op_histogram
    assert _run(handle, FEED)["output"].shape == (3, 2)


def test_factory(tmp_path):
    source = tmp_path / "build.py"
    source.write_text(textwrap.dedent("""
        import torch
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = torch.nn.Linear(4, 2)
            def forward(self, features, scale=1.0):
                return self.fc(features) * scale
        def make():
            torch.manual_seed(0)
            return Net()
    """))

    handle = load_model(f"{source}:make")

    assert handle.format is ModelFormat.TORCH_FACTORY and handle.factory_function == "make"
    assert [s.name for s in handle.inputs] == ["features", "scale"]
    assert handle.op_histogram == {"Linear": 1}


def test_factory_errors_are_reported(tmp_path):
    source = tmp_path / "broken.py"
    source.write_text("def make():\n    raise ValueError('weights file missing')\n\ndef other():\n    return 3\n")
    with pytest.raises(ModelLoadError, match="raised ValueError: weights file missing"):
        load_model(f"{source}:make")
    with pytest.raises(ModelLoadError, match="returned int, not a torch.nn.Module"):
        load_model(f"{source}:other")
    with pytest.raises(ModelLoadError, match="has no function 'absent'"):
        load_model(f"{source}:absent")


def test_pickled_module_is_refused_unless_trusted(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(_module(), str(path))

    with pytest.raises(UntrustedModelError, match="unpickling can run arbitrary code"):
        load_model(path)
    handle = load_model(path, trust_pickle=True)

    assert handle.format is ModelFormat.TORCH_PICKLE and handle.trusted
    assert _run(handle, FEED)["output"].shape == (3, 2)


def test_state_dict_needs_a_factory(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save(_module().state_dict(), str(path))
    with pytest.raises(UnsupportedModelError, match="state_dict .*factory"):
        load_model(path)


def test_random_bytes_named_pt(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(bytes([0x80]) + os.urandom(500))
    with pytest.raises(CorruptModelError):
        load_model(path)


def test_torch_backend_refuses_onnx(linear_model):
    with pytest.raises(BackendError, match="use --backend onnxruntime"):
        get_backend("torch").load(load_model(linear_model))


def test_torch_run_error_is_typed(tmp_path):
    path = tmp_path / "model.pt"
    torch.jit.trace(_module(), torch.ones(1, 4)).save(str(path))
    with pytest.raises(BackendError, match="the model failed to run"):
        _run(load_model(path), {"features": np.ones((3, 5), dtype=np.float32)})


def test_without_pytorch_torch_models_get_a_clear_error(tmp_path, monkeypatch):
    from engine.model import torch_loader
    from engine.optimize import plan

    path = tmp_path / "model.pt"
    torch.jit.trace(_module(), torch.ones(1, 4)).save(str(path))
    monkeypatch.setattr(torch_loader, "torch_installed", lambda: False)
    monkeypatch.setattr(plan, "torch_installed", lambda: False)
    with pytest.raises(UnsupportedModelError, match="needs PyTorch, which this installation leaves out"):
        load_model(path)
    with pytest.raises(UnsupportedModelError, match="needs PyTorch"):
        get_backend("torch").import_runtime()
    factory = SimpleNamespace(format=ModelFormat.TORCH_FACTORY, trusted=True)
    assert "needs PyTorch" in plan.module_blocker(factory)
