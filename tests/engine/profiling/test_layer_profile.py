"""Per-layer profiles: a real ONNX Runtime trace parsed into tables, placement and fallback, PyTorch, comparison."""

from __future__ import annotations

import json
import tempfile
import textwrap
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from engine.backends import BackendOptions
from engine.device.discovery import DeviceRunner
from engine.errors import BackendError
from engine.model.inputs import InputRequest, prepare_inputs
from engine.model.opening import load_model
from engine.profiling.layer_profile import (
    LayerProfile,
    NodeEvent,
    build_profile,
)
from engine.profiling.onnxruntime_profile import profiling_session
from engine.profiling.profiler import profile_layers
from engine.profiling.report import (
    compare_profiles,
    comparison_text,
    op_family,
    profile_text,
)

CPU = DeviceRunner("onnxruntime", "CPUExecutionProvider")


def tiny_cnn(path: Path, *, channels: int = 8) -> Path:
    """conv (3x3, 3 -> channels, 16x16) -> relu -> global average pool -> flatten -> fc (channels -> 4)."""
    rng = np.random.default_rng(0)
    initializers = [
        numpy_helper.from_array(rng.standard_normal((channels, 3, 3, 3)).astype(np.float32), "conv_w"),
        numpy_helper.from_array(rng.standard_normal((4, channels)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(np.zeros(4, np.float32), "fc_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "conv_w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(nodes, "tiny_cnn",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 16, 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
                              initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save_model(model, str(path))
    return path


def _profile(path: Path, *, level: str = "disable", batch: int = 2, iterations: int = 6) -> LayerProfile:
    handle = load_model(path)
    inputs = prepare_inputs(handle.inputs, InputRequest(batch=batch))
    return profile_layers("onnxruntime", handle, CPU, BackendOptions(threads=1, graph_optimization_level=level),
                          inputs, iterations=iterations, warmup=2)


def _our_temp_folders() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("autoglm-ort-profile-*")}


def test_a_real_onnxruntime_profile_becomes_node_and_op_type_tables(tmp_path, monkeypatch):
    # setup
    model = tiny_cnn(tmp_path / "tiny.onnx")
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    folders_before = _our_temp_folders()

    # execute
    profile = _profile(model)

    # assert: every node, once per profiled inference (warm-up excluded), on the CPU
    nodes = {node.name: node for node in profile.nodes}
    assert set(nodes) == {"conv", "relu", "pool", "flatten", "fc"}
    assert all(node.calls == 6 and node.provider == "CPUExecutionProvider" for node in profile.nodes)
    assert [node.op_type for node in sorted(profile.nodes, key=lambda n: n.order)] == [
        "Conv", "Relu", "GlobalAveragePool", "Flatten", "Gemm"]
    assert sum(node.share for node in profile.nodes) == pytest.approx(1.0)
    assert all(node.mean_us == pytest.approx(node.total_us / node.calls) for node in profile.nodes)
    assert [n.total_us for n in profile.nodes] == sorted((n.total_us for n in profile.nodes), reverse=True)
    # MACs at the shapes run: conv 2x8x16x16 outputs x 3x3x3, fc 2x4 outputs x 8
    assert nodes["conv"].macs == 2 * 8 * 16 * 16 * 27 and nodes["fc"].macs == 2 * 4 * 8
    assert nodes["relu"].macs is None
    op_types = {op.op_type: op for op in profile.op_types}
    assert op_types["Conv"].calls == 6 and op_types["Conv"].macs == nodes["conv"].macs
    assert profile.iterations == 6 and profile.batch_size == 2
    assert profile.profiled_run_ms["median"] > 0 and profile.unattributed_per_inference_us >= 0
    assert not profile.placement.fallback
    assert profile.placement.message() == "all 5 nodes ran on CPUExecutionProvider, as requested"
    # no trace file left behind, here or in the temporary folder
    assert list(workdir.iterdir()) == [] and _our_temp_folders() == folders_before


def test_fused_nodes_keep_their_macs_from_the_shapes_they_ran_with(tmp_path):
    # setup: 16 channels, a multiple of every NCHWc block size, so the blocked layout adds no padding
    model = tiny_cnn(tmp_path / "tiny.onnx", channels=16)

    # execute: with every optimization, ONNX Runtime fuses conv+relu and renames the node
    profile = _profile(model, level="all")

    # assert
    conv = [node for node in profile.nodes if op_family(node.op_type) == "Conv"]
    assert len(conv) == 1 and conv[0].name != "conv" and conv[0].macs == 2 * 16 * 16 * 16 * 27
    assert any("counted at the shapes they ran with" in note for note in profile.notes)


def test_nodes_off_the_requested_provider_are_flagged_as_fallback():
    # setup: an accelerator asked for, two of four nodes ran on the CPU
    events = [NodeEvent("conv", "Conv", "CUDAExecutionProvider", 60.0, run) for run in range(2)]
    events += [NodeEvent("nms", "NonMaxSuppression", "CPUExecutionProvider", 30.0, run) for run in range(2)]
    events += [NodeEvent("topk", "TopK", "CPUExecutionProvider", 10.0, run) for run in range(2)]
    events += [NodeEvent("copy", "MemcpyToHost", "CUDAExecutionProvider", 0.0, run) for run in range(2)]

    # execute
    profile = build_profile(events, runtime="onnxruntime", model="m.onnx", requested="CUDAExecutionProvider",
                            batch_size=1, iterations=2, run_walls_ns=[200_000, 220_000])

    # assert
    placement = profile.placement
    assert placement.fallback and set(placement.off_requested_nodes) == {"nms", "topk"}
    assert placement.off_requested_share == pytest.approx(0.4)
    assert placement.nodes_by_provider == {"CUDAExecutionProvider": 2, "CPUExecutionProvider": 2}
    assert placement.time_share_by_provider["CPUExecutionProvider"] == pytest.approx(0.4)
    assert placement.message().startswith("FALLBACK: 2 of 4 nodes (40.0% of node time) did not run on the "
                                          "requested CUDAExecutionProvider but on CPUExecutionProvider (2)")
    assert "not on the requested provider" in profile_text(profile)


def test_a_profile_round_trips_through_json(tmp_path):
    # setup
    profile = _profile(tiny_cnn(tmp_path / "tiny.onnx"), iterations=3)

    # execute
    again = LayerProfile.from_dict(json.loads(json.dumps(profile.to_dict())))

    # assert
    assert again == profile
    assert profile.to_dict()["placement"]["message"] == profile.placement.message()


def test_the_profiled_session_matches_the_benchmark_sessions_settings(tmp_path):
    # setup
    from engine.backends import get_backend

    handle = load_model(tiny_cnn(tmp_path / "tiny.onnx"))
    options = BackendOptions(threads=1, inter_op_threads=1, graph_optimization_level="basic")
    backend = get_backend("onnxruntime")

    # execute
    profiled = profiling_session(handle, CPU, options, tmp_path / "trace")
    timed = backend.create_session(backend.load(handle), CPU, options)

    # assert
    try:
        ours, theirs = profiled.get_session_options(), timed._session.get_session_options()
        for name in ("intra_op_num_threads", "inter_op_num_threads", "execution_mode", "graph_optimization_level"):
            assert getattr(ours, name) == getattr(theirs, name)
        assert profiled.get_providers() == timed.description["providers"] and ours.enable_profiling
    finally:
        Path(profiled.end_profiling()).unlink()
        timed.close()


def test_fp32_against_int8_puts_measured_speedup_next_to_the_mac_prediction(tmp_path):
    # setup
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = tiny_cnn(tmp_path / "fp32.onnx", channels=16)
    int8 = tmp_path / "int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QUInt8, op_types_to_quantize=["Conv", "Gemm"])
    baseline, candidate = _profile(fp32), _profile(int8)

    # execute
    comparison = compare_profiles(baseline, candidate)

    # assert: quantization keeps the MACs, so MACs predict no speedup; the times are measured, whatever they are
    conv = next(row for row in comparison.op_families if row.name == "Conv")
    assert conv.predicted_speedup == pytest.approx(1.0)
    assert conv.measured_speedup == pytest.approx(conv.baseline_us / conv.candidate_us)
    assert any(row.name == "Quantize/Dequantize" and row.baseline_us is None for row in comparison.op_families)
    assert comparison.layers and all(row.predicted_speedup == pytest.approx(1.0) for row in comparison.layers)
    assert comparison.end_to_end.measured_speedup is not None
    assert "measured" in comparison_text(comparison) and json.dumps(comparison.to_dict())


def test_a_pruned_layer_predicts_a_speedup_from_its_macs(tmp_path):
    # setup: half the conv channels
    baseline = _profile(tiny_cnn(tmp_path / "wide.onnx", channels=16), iterations=3)
    candidate = _profile(tiny_cnn(tmp_path / "narrow.onnx", channels=8), iterations=3)

    # execute
    comparison = compare_profiles(baseline, candidate)

    # assert
    layers = {row.name: row for row in comparison.layers}
    assert layers["conv (Conv)"].predicted_speedup == pytest.approx(2.0)
    assert layers["fc (Gemm)"].predicted_speedup == pytest.approx(2.0)
    assert comparison.pairing == "2 compute layers paired in execution order"


def test_a_pytorch_model_profiles_per_layer_with_torch_profiler(tmp_path):
    # setup
    source = tmp_path / "tiny_net.py"
    source.write_text(textwrap.dedent("""
        import torch.nn as nn

        def build():
            return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(8, 4))
    """))
    handle = load_model(f"{source}:build")
    inputs = prepare_inputs(handle.inputs, InputRequest(shapes={handle.inputs[0].name: (2, 3, 16, 16)}))

    # execute
    profile = profile_layers("torch", handle, DeviceRunner("torch", "cpu"), BackendOptions(threads=1), inputs,
                             iterations=4, warmup=1)

    # assert
    nodes = {node.name: node for node in profile.nodes}
    assert {name: node.op_type for name, node in nodes.items()} == {
        "0": "Conv2d", "1": "ReLU", "2": "AdaptiveAvgPool2d", "3": "Flatten", "4": "Linear"}
    assert all(node.calls == 4 and node.provider == "cpu" for node in profile.nodes)
    assert nodes["0"].macs == 2 * 8 * 16 * 16 * 27 and nodes["4"].macs == 2 * 4 * 8 and nodes["1"].macs is None
    assert profile.runtime == "torch" and not profile.placement.fallback
    assert profile.unattributed_per_inference_us is not None


def test_an_unknown_backend_has_no_layer_profiler(tmp_path):
    handle = load_model(tiny_cnn(tmp_path / "tiny.onnx"))
    with pytest.raises(BackendError, match="no per-layer profiler"):
        profile_layers("tflite", handle, CPU, BackendOptions(), prepare_inputs(handle.inputs, InputRequest()))


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
def test_a_torchscript_module_without_layer_hooks_is_profiled_per_operator(tmp_path):
    # setup
    import torch

    traced = torch.jit.trace(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval(),
                             torch.zeros(1, 3, 8, 8))
    path = tmp_path / "traced.pt"
    traced.save(str(path))
    handle = load_model(path)
    inputs = prepare_inputs(handle.inputs, InputRequest(shapes={handle.inputs[0].name: (1, 3, 8, 8)}))

    # execute
    profile = profile_layers("torch", handle, DeviceRunner("torch", "cpu"), BackendOptions(threads=1), inputs,
                             iterations=3, warmup=1)

    # assert
    assert any(node.op_type.startswith("aten::") for node in profile.nodes)
    assert any("timed per operator" in note for note in profile.notes)
    assert sum(node.share for node in profile.nodes) == pytest.approx(1.0)


def test_a_cancel_during_the_onnxruntime_warm_up_profiles_nothing(tmp_path):
    # setup: cancel as soon as the warm-up is announced
    handle = load_model(tiny_cnn(tmp_path / "tiny.onnx"))
    cancel = threading.Event()
    messages = []

    def progress(fraction, message):
        messages.append(message)
        if message.startswith("warm-up"):
            cancel.set()

    # execute / assert
    with pytest.raises(BackendError, match="stopped before any inference"):
        profile_layers("onnxruntime", handle, CPU, BackendOptions(threads=1), prepare_inputs(handle.inputs,
                       InputRequest()), iterations=3, warmup=2, cancel=cancel, progress=progress)
    assert not any(message.startswith("profiled inference") for message in messages)


def test_a_cancelled_pytorch_profile_skips_the_warm_up_too(tmp_path):
    # setup: a module that counts its forward calls in a file
    calls = tmp_path / "calls.txt"
    source = tmp_path / "counting_net.py"
    source.write_text(textwrap.dedent(f"""
        import torch.nn as nn

        class Counting(nn.Linear):
            def forward(self, x):
                with open({str(calls)!r}, "a") as log:
                    log.write("x")
                return super().forward(x)

        def build():
            return Counting(4, 2)
    """))
    handle = load_model(f"{source}:build")
    inputs = prepare_inputs(handle.inputs, InputRequest(shapes={handle.inputs[0].name: (1, 4)}))
    cancel = threading.Event()
    cancel.set()

    # execute / assert
    with pytest.raises(BackendError, match="stopped before any inference"):
        profile_layers("torch", handle, DeviceRunner("torch", "cpu"), BackendOptions(threads=1), inputs,
                       iterations=3, warmup=5, cancel=cancel)
    assert not calls.exists()
