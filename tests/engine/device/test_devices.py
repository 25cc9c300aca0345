from pathlib import Path

import pytest

from engine.device import discovery as devices
from engine.device.cpu_info import cpu_info
from engine.errors import DeviceUnavailableError

A100 = {"index": 0, "name": "NVIDIA A100-SXM4-40GB", "memory_total_bytes": 42_949_672_960}


@pytest.fixture
def machine(monkeypatch):
    """A machine with no GPU and no NPU unless a test says otherwise."""
    state = {"providers": ["CPUExecutionProvider"], "gpus": ([], None, "no NVIDIA driver: NVML says 'NVML Shared Library Not Found'"),
             "torch_cuda": 0, "ep_npus": [], "openvino": [], "accel": []}
    monkeypatch.setattr(devices, "ort_providers", lambda: state["providers"])
    monkeypatch.setattr(devices, "nvml_gpus", lambda: state["gpus"])
    monkeypatch.setattr(devices, "torch_cuda_device_count", lambda: state["torch_cuda"])
    monkeypatch.setattr(devices, "ort_npu_ep_devices", lambda: state["ep_npus"])
    monkeypatch.setattr(devices, "openvino_devices", lambda: state["openvino"])
    monkeypatch.setattr(devices, "accel_device_nodes", lambda: state["accel"])
    return state


def test_cpu_only_machine(machine):
    found = {d.id: d for d in devices.discover()}
    assert found["cpu"].available and found["cpu"].runner_for("onnxruntime").provider == "CPUExecutionProvider"
    assert not found["cuda"].available and "NVML Shared Library Not Found" in found["cuda"].reason
    assert not found["npu"].available and "no NPU found" in found["npu"].reason


def test_gpu_present_but_no_cuda_runtime(machine):
    machine["gpus"] = ([A100], "550.54", None)
    gpu = next(d for d in devices.discover() if d.kind == "gpu")
    assert gpu.id == "cuda:0" and gpu.name == A100["name"] and not gpu.available
    assert "open-autoglm-studio[gpu]" in gpu.reason
    with pytest.raises(DeviceUnavailableError, match="'cuda:0' is unavailable: onnxruntime has no CUDA provider"):
        devices.resolve("cuda:0", "onnxruntime")


def test_gpu_with_cuda_provider_and_torch(machine):
    machine["gpus"] = ([A100], "550.54", None)
    machine["providers"] = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    machine["torch_cuda"] = 1
    device, runner = devices.resolve("cuda", "onnxruntime")
    assert device.id == "cuda:0" and runner.provider == "CUDAExecutionProvider" and runner.options == {"device_id": 0}
    assert devices.resolve("cuda:0", "torch")[1].provider == "cuda:0"
    assert device.details["driver"] == "550.54"


def test_npu_through_openvino(machine):
    machine["providers"] = ["OpenVINOExecutionProvider", "CPUExecutionProvider"]
    machine["openvino"] = ["CPU", "NPU"]
    device, runner = devices.resolve("npu", "onnxruntime")
    assert runner.provider == "OpenVINOExecutionProvider" and runner.options == {"device_type": "NPU"}


def test_npu_seen_by_openvino_without_its_onnxruntime_provider(machine):
    machine["openvino"] = ["CPU", "NPU"]
    with pytest.raises(DeviceUnavailableError, match="needs onnxruntime-openvino"):
        devices.resolve("npu", "onnxruntime")


def test_npu_device_node_without_runtime(machine):
    machine["accel"] = [Path("/dev/accel/accel0")]
    npu = next(d for d in devices.discover() if d.kind == "npu")
    assert not npu.available and "/dev/accel/accel0 exists" in npu.reason


def test_npu_reported_by_onnxruntime_ep_devices(machine):
    machine["ep_npus"] = [("QNNExecutionProvider", "Qualcomm")]
    npu = next(d for d in devices.discover() if d.kind == "npu")
    assert npu.available and npu.id == "npu:0" and "Qualcomm" in npu.name


def test_unknown_device_and_wrong_backend(machine):
    with pytest.raises(DeviceUnavailableError, match="no device 'tpu'"):
        devices.resolve("tpu", "onnxruntime")
    machine["providers"] = []
    with pytest.raises(DeviceUnavailableError, match="backend 'onnxruntime' cannot run on 'cpu'; use --backend torch"):
        devices.resolve("cpu", "onnxruntime")


def test_cpu_info_parses_proc_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx2 avx512_vnni amx_tile sse4_2\n\n"
                    "processor\t: 1\nmodel name\t: Test CPU 9000\n")
    info = cpu_info(path)
    assert info.model == "Test CPU 9000"
    assert info.isa_flags == ("sse4_2", "avx2", "avx512_vnni", "amx_tile")


def test_cpu_info_without_proc(tmp_path):
    info = cpu_info(tmp_path / "absent")
    assert info.model and info.isa_flags == () and info.logical_cores >= 1
