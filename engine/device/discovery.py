"""Every device the user can run on, which backend and provider runs it, and why not where it can't.

Each probe below is a small function so tests can stand in for hardware that
this machine does not have.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from engine.device.cpu_info import cpu_info
from engine.errors import DeviceUnavailableError

# NPU-capable ONNX Runtime execution providers and the options that aim them at the NPU.
NPU_PROVIDERS = {
    "QNNExecutionProvider": {"backend_type": "htp"},
    "VitisAIExecutionProvider": {},
    "OpenVINOExecutionProvider": {"device_type": "NPU"},
    "DmlExecutionProvider": {"device_id": 0},
    "CoreMLExecutionProvider": {"MLComputeUnits": "CPUAndNeuralEngine"},
}
GPU_EXTRA_HINT = "install the GPU build: pip install 'open-autoglm-studio[gpu]'"


@dataclass(frozen=True)
class DeviceRunner:
    backend: str  # "onnxruntime" or "torch"
    provider: str  # an ONNX Runtime execution provider, or a torch device string
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"backend": self.backend, "provider": self.provider, "options": dict(self.options)}


@dataclass(frozen=True)
class Device:
    id: str  # "cpu", "cuda:0", "npu:0"
    kind: str  # "cpu", "gpu" or "npu"
    name: str
    runners: tuple[DeviceRunner, ...]
    available: bool
    reason: str | None = None  # why it cannot be used, when it cannot
    details: dict = field(default_factory=dict)

    def runner_for(self, backend: str) -> DeviceRunner | None:
        return next((r for r in self.runners if r.backend == backend), None)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "available": self.available,
            "reason": self.reason,
            "runners": [r.to_dict() for r in self.runners],
            "details": self.details,
        }


def discover() -> list[Device]:
    providers = ort_providers()
    return [cpu_device(providers), *nvidia_devices(providers), *npu_devices(providers)]


def resolve(device_id: str, backend: str, devices: list[Device] | None = None) -> tuple[Device, DeviceRunner]:
    """The device and runner for `--device` and `--backend`, or a clear reason why not."""
    devices = discover() if devices is None else devices
    wanted = device_id.strip().lower()
    if wanted in ("cuda", "gpu"):
        wanted = "cuda:0"
    # "cuda:1" also matches the unavailable "cuda" entry, so its reason is reported.
    matches = [d for d in devices if d.id in (wanted, wanted.split(":")[0]) or (wanted == "npu" and d.kind == "npu")]
    if not matches:
        known = ", ".join(d.id for d in devices)
        raise DeviceUnavailableError(f"no device '{device_id}' on this machine; devices: {known}")
    usable = [d for d in matches if d.available]
    if not usable:
        raise DeviceUnavailableError(f"device '{device_id}' is unavailable: {matches[0].reason}")
    for device in usable:
        runner = device.runner_for(backend)
        if runner is not None:
            return device, runner
    others = ", ".join(sorted({r.backend for d in usable for r in d.runners}))
    raise DeviceUnavailableError(f"backend '{backend}' cannot run on '{device_id}'; use --backend {others}")


def cpu_device(providers: list[str]) -> Device:
    info = cpu_info()
    runners = []
    if "CPUExecutionProvider" in providers:
        runners.append(DeviceRunner("onnxruntime", "CPUExecutionProvider"))
    if torch_installed():
        runners.append(DeviceRunner("torch", "cpu"))
    return Device(
        id="cpu",
        kind="cpu",
        name=info.model,
        runners=tuple(runners),
        available=bool(runners),
        reason=None if runners else "neither onnxruntime nor torch is installed",
        details=info.to_dict(),
    )


def nvidia_devices(providers: list[str]) -> list[Device]:
    gpus, driver, nvml_problem = nvml_gpus()
    ort_runners = [p for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider") if p in providers]
    torch_count = torch_cuda_device_count() if (gpus or ort_runners) else 0
    if not gpus:
        if not (ort_runners or torch_count):
            return [Device("cuda", "gpu", "NVIDIA GPU", (), False, reason=f"no NVIDIA GPU found ({nvml_problem})")]
        gpus = [{"index": i, "name": f"CUDA device {i}"} for i in range(max(torch_count, 1))]
    devices = []
    for gpu in gpus:
        index = gpu["index"]
        runners = [DeviceRunner("onnxruntime", p, {"device_id": index}) for p in ort_runners]
        if index < torch_count:
            runners.append(DeviceRunner("torch", f"cuda:{index}"))
        reason = None if runners else f"onnxruntime has no CUDA provider and torch has no CUDA support here; {GPU_EXTRA_HINT}"
        devices.append(Device(
            id=f"cuda:{index}", kind="gpu", name=gpu["name"], runners=tuple(runners), available=bool(runners),
            reason=reason, details={**gpu, "driver": driver},
        ))
    return devices


def npu_devices(providers: list[str]) -> list[Device]:
    devices = []
    for ep_name, vendor in ort_npu_ep_devices():
        options = NPU_PROVIDERS.get(ep_name, {})
        devices.append(Device(f"npu:{len(devices)}", "npu", f"{vendor} NPU ({ep_name})",
                              (DeviceRunner("onnxruntime", ep_name, options),), True, details={"source": "onnxruntime.get_ep_devices"}))
    listed = {d.runners[0].provider for d in devices}
    openvino = openvino_devices()
    for provider, options in NPU_PROVIDERS.items():
        if provider not in providers or provider in listed:
            continue
        if provider == "OpenVINOExecutionProvider" and "NPU" not in openvino:
            continue
        devices.append(Device(
            f"npu:{len(devices)}", "npu", f"NPU via {provider}", (DeviceRunner("onnxruntime", provider, options),), True,
            details={"source": "onnxruntime provider list; the hardware is confirmed when a session starts"},
        ))
    if devices:
        return devices
    if "NPU" in openvino:
        return [Device("npu", "npu", "Intel NPU (seen by OpenVINO)", (), False,
                       reason="OpenVINO sees an NPU, but running it needs onnxruntime-openvino (OpenVINOExecutionProvider)")]
    nodes = accel_device_nodes()
    if nodes:
        return [Device("npu", "npu", "NPU", (), False,
                       reason=f"{nodes[0]} exists but no NPU runtime is installed; install the 'openvino' extra and onnxruntime-openvino")]
    return [Device("npu", "npu", "NPU", (), False,
                   reason="no NPU found: onnxruntime has no NPU provider (QNN, VitisAI, OpenVINO, DirectML, CoreML), "
                          "OpenVINO reports none, and there is no /dev/accel device")]


# --- probes -----------------------------------------------------------------

def ort_providers() -> list[str]:
    try:
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())


def ort_npu_ep_devices() -> list[tuple[str, str]]:
    """(execution provider, vendor) for each NPU that ONNX Runtime >= 1.22 reports as hardware."""
    try:
        import onnxruntime
    except ImportError:
        return []
    if not hasattr(onnxruntime, "get_ep_devices"):
        return []
    return [
        (ep.ep_name, ep.device.vendor or ep.ep_vendor)
        for ep in onnxruntime.get_ep_devices()
        if ep.device.type == onnxruntime.OrtHardwareDeviceType.NPU
    ]


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def torch_cuda_device_count() -> int:
    if not torch_installed():
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def nvml_gpus() -> tuple[list[dict], str | None, str | None]:
    """(GPUs, driver version, problem): the problem says why there are none."""
    try:
        import pynvml
    except ImportError:
        return [], None, "nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        return [], None, f"no NVIDIA driver: NVML says '{error}'"
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append({"index": index, "name": pynvml.nvmlDeviceGetName(handle), "memory_total_bytes": int(memory.total)})
        return gpus, driver, None if gpus else "the NVIDIA driver reports no GPUs"
    except pynvml.NVMLError as error:
        return [], None, f"NVML failed: {error}"
    finally:
        pynvml.nvmlShutdown()


def openvino_devices() -> list[str]:
    if importlib.util.find_spec("openvino") is None:
        return []
    import openvino

    return list(openvino.Core().available_devices)


def accel_device_nodes(root: Path = Path("/dev/accel")) -> list[Path]:
    return sorted(root.glob("accel*")) if root.is_dir() else []
