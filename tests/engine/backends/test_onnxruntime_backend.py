import numpy as np
import pytest

from engine.backends import BackendOptions, get_backend
from engine.device.discovery import DeviceRunner
from engine.errors import BackendError, InputError
from engine.model.opening import load_model
from tests.conftest import linear_onnx

CPU = DeviceRunner("onnxruntime", "CPUExecutionProvider")


def _session(path, **options):
    backend = get_backend("onnxruntime")
    return backend.create_session(backend.load(load_model(path)), CPU, BackendOptions(**options))


def test_run_and_bind_agree(linear_model):
    session = _session(linear_model, threads=1, graph_optimization_level="basic")
    feed = {"x": np.ones((2, 4), np.float32)}
    outputs = session.run(feed)
    bound = session.bind(feed)()
    assert outputs["y"].shape == (2, 3)
    np.testing.assert_array_equal(outputs["y"], bound[0])
    assert session.description["graph_optimization_level"] == "basic" and not session.needs_sync
    session.close()


def test_external_data_model_runs(tmp_path):
    session = _session(linear_onnx(tmp_path / "ext.onnx", external=True))
    assert session.run({"x": np.zeros((1, 4), np.float32)})["y"].shape == (1, 3)
    session.close()


def test_wrong_input_at_run_time_is_typed(linear_model):
    session = _session(linear_model)
    with pytest.raises(BackendError, match="onnxruntime failed to run the model"):
        session.run({"x": np.ones((2, 5), np.float32)})
    session.close()


def test_missing_provider_is_an_error_not_a_silent_fallback(linear_model):
    backend = get_backend("onnxruntime")
    loaded = backend.load(load_model(linear_model))
    with pytest.raises(BackendError, match="CUDAExecutionProvider did not start|could not create a session"):
        backend.create_session(loaded, DeviceRunner("onnxruntime", "CUDAExecutionProvider", {"device_id": 0}), BackendOptions())


def test_unknown_backend_and_bad_options():
    with pytest.raises(BackendError, match="unknown backend 'tvm'"):
        get_backend("tvm")
    with pytest.raises(InputError, match="threads must be 1 to [0-9]+ .*, got 0"):
        BackendOptions(threads=0)
    with pytest.raises(InputError, match="graph optimization level"):
        BackendOptions(graph_optimization_level="max")
