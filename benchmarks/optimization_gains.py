"""What do the optimization passes buy on this CPU, measured side by side in one process?

Prints speedup over FP32 (median latency, 1 intra-op thread, interleaved
rounds with the studio's runner) and fidelity (cosine over 32 seeded inputs) for:
  (a) the sample CNN, static_int8 per-channel          target ≥ 1.8× at cosine ≥ 0.99
  (b) the sample CNN, structured pruning 50 %          target ≥ 2×, exported and run in ONNX Runtime
  (c) the sample transformer, dynamic_int8            target ≥ 1.3×, fidelity printed
  (d) auto with a cosine budget of 0.99 on both       meets the budget, within 5 % of the fastest
      candidate found by hand (a grid made here directly with ONNX Runtime's tools)
A missed target is followed by a per-node profile of both models, to show why.

    .venv/bin/python benchmarks/optimization_gains.py [--seconds 4] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from engine.device.discovery import DeviceRunner
from engine.model.inputs import InputRequest
from engine.model.opening import load_model
from engine.optimize.fidelity import run_model
from engine.optimize.output_metrics import compare_outputs
from engine.optimize.optimizer import measure_before_after, optimize
from engine.optimize.passes.cache import CACHE_ENV
from engine.optimize.passes.latency import measure_side_by_side
from engine.optimize.passes.model_inputs import FeedSpecs, ModelInputs
from engine.optimize.recipe import CalibrationSettings, Recipe

REPO = Path(__file__).resolve().parent.parent
CNN = REPO / "resources" / "models" / "sample_cnn.onnx"
TRANSFORMER = REPO / "resources" / "models" / "sample_transformer.onnx"
CNN_FACTORY = f"{REPO / 'resources' / 'make_sample_models.py'}:sample_cnn"
BUDGET = 0.99
FIDELITY_SAMPLES = 32

RUNNER = DeviceRunner("onnxruntime", "CPUExecutionProvider")


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def fixed_recipe(name: str, out_dir: Path, model, recipe: dict, request: InputRequest, args) -> dict:
    result = optimize(model, Recipe.from_dict(recipe), request, out_dir / f"{name}.onnx", threads=1)
    timing = measure_before_after(result, request, threads=1, seconds_each=args.seconds, rounds=args.rounds)
    output = result.fidelity.outputs[0]
    return {"result": result, "timing": timing, "cosine": output.cosine, "top1": output.top1_agreement,
            "relative_l2": output.relative_l2}


def print_fixed(label: str, row: dict, target: float, cosine_target: float | None) -> bool:
    t = row["timing"]
    ok = t["speedup"] >= target and (cosine_target is None or row["cosine"] >= cosine_target)
    cosine_text = f"cosine {row['cosine']:.5f}" + (f" (target ≥ {cosine_target})" if cosine_target else "")
    print(f"{label}: {t['optimized']['median_ms']:.4f} ms vs FP32 {t['baseline']['median_ms']:.4f} ms → "
          f"{t['speedup']:.2f}× (target ≥ {target}×), {cosine_text}, top-1 agreement {row['top1']:.3f}, "
          f"relative L2 {row['relative_l2']:.4f}  [{verdict(ok)}]")
    return ok


def hand_grid(model_path: Path, work: Path, inputs: ModelInputs) -> dict[str, Path]:
    """Variants made directly with ONNX Runtime's quantization tools, independent of the auto pass."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = work / f"{model_path.stem}_prepared.onnx"
    quant_pre_process(str(model_path), str(prepared))
    specs = FeedSpecs.of_onnx(model_path)
    calibration = list(inputs.calibration_samples(specs))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration)

        def get_next(self):
            return next(self.items, None)

    variants = {}
    for per_channel in (False, True):
        for reduce_range in (False, True):
            path = work / f"{model_path.stem}_dyn_pc{int(per_channel)}_rr{int(reduce_range)}.onnx"
            quantize_dynamic(str(prepared), str(path), per_channel=per_channel, reduce_range=reduce_range,
                             weight_type=QuantType.QInt8)
            variants[path.stem] = path
        for activation in (QuantType.QUInt8, QuantType.QInt8):
            path = work / f"{model_path.stem}_qdq_pc{int(per_channel)}_{activation.name}.onnx"
            quantize_static(str(prepared), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            activation_type=activation, weight_type=QuantType.QInt8)
            variants[path.stem] = path
    variants["fp32"] = model_path
    return variants


def exclusion_variants(model_path: Path, best: str, work: Path, inputs: ModelInputs) -> dict[str, Path]:
    """The best base variant again with each Conv/MatMul/Gemm kept in FP32 in turn."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    prepared = work / f"{model_path.stem}_prepared.onnx"
    nodes = [n.name for n in onnx.load(str(prepared)).graph.node if n.op_type in ("Conv", "MatMul", "Gemm")]
    calibration = list(inputs.calibration_samples(FeedSpecs.of_onnx(model_path)))
    per_channel = "_pc1" in best
    variants = {}
    for node in nodes:
        path = work / f"{best}_keep_{node.replace('/', '_')}.onnx"

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.items = iter(calibration)

            def get_next(self):
                return next(self.items, None)

        if "_dyn_" in best:
            quantize_dynamic(str(prepared), str(path), per_channel=per_channel, reduce_range="_rr1" in best,
                             weight_type=QuantType.QInt8, nodes_to_exclude=[node])
        else:
            activation = QuantType.QInt8 if best.endswith("QInt8") else QuantType.QUInt8
            quantize_static(str(prepared), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            activation_type=activation, weight_type=QuantType.QInt8, nodes_to_exclude=[node])
        variants[path.stem] = path
    return variants


def cosines(paths: dict[str, Path], reference: Path, inputs: ModelInputs) -> dict[str, float]:
    feeds = inputs.feeds(FeedSpecs.of_onnx(reference), FIDELITY_SAMPLES)
    truth = run_model(load_model(reference), feeds)
    return {name: min(o.cosine for o in compare_outputs(truth, run_model(load_model(path), feeds)))
            for name, path in paths.items()}


def auto_versus_hand(label: str, model_path: Path, work: Path, args) -> bool:
    request = InputRequest()
    inputs = ModelInputs(request, 0, CalibrationSettings())
    recipe = Recipe.from_dict({"quantization": {"method": "auto", "auto_seconds_per_candidate": args.seconds},
                               "budget": {"min_cosine": BUDGET}})
    result = optimize(load_model(model_path), recipe, request, work / f"{model_path.stem}_auto.onnx", threads=1)
    auto = result.auto_report
    grid = hand_grid(model_path, work, inputs)
    fidelity = cosines(grid, model_path, inputs)
    feed = inputs.feed(FeedSpecs.of_onnx(model_path))
    screen = measure_side_by_side({n: load_model(p) for n, p in grid.items()}, feed, RUNNER, seconds_each=0.5,
                                  rounds=2, threads=1)
    passing = [n for n in grid if fidelity[n] >= BUDGET and n != "fp32"]
    if passing:
        best_base = min(passing, key=lambda n: screen[n].median_ms)
        extra = exclusion_variants(model_path, best_base, work, inputs)
        extra_fidelity = cosines(extra, model_path, inputs)
        extra_screen = measure_side_by_side({n: load_model(p) for n, p in extra.items()}, feed, RUNNER,
                                            seconds_each=0.5, rounds=2, threads=1)
        grid.update(extra)
        fidelity.update(extra_fidelity)
        screen.update(extra_screen)
    meeting = [n for n in grid if fidelity[n] >= BUDGET]
    best_hand = min(meeting, key=lambda n: screen[n].median_ms)
    final = measure_side_by_side(
        {"fp32": load_model(model_path), "auto": load_model(result.output_path), "hand": load_model(grid[best_hand])},
        feed, RUNNER, seconds_each=args.seconds, rounds=args.rounds, threads=1)
    auto_cosine = result.fidelity.worst_cosine
    ratio = final["auto"].median_ms / final["hand"].median_ms
    ok = auto_cosine >= BUDGET and ratio <= 1.05
    print(f"{label}: auto chose {auto['choice']} (nodes kept FP32: {auto['choice_nodes_in_fp32'] or 'none'}), "
          f"cosine {auto_cosine:.5f} (budget ≥ {BUDGET})")
    print("    candidates auto tried: " + ", ".join(
        f"{c['name']} {c['latency_ms']:.4f} ms cos {c['cosine']:.5f}" if c["latency_ms"] else
        f"{c['name']} (misses budget, cos {c['cosine']:.5f})" for c in auto["candidates"]))
    print(f"    fastest by hand of {len(grid)} variants meeting the budget: {best_hand} "
          f"(cosine {fidelity[best_hand]:.5f})")
    print(f"    side by side: FP32 {final['fp32'].median_ms:.4f} ms, auto {final['auto'].median_ms:.4f} ms "
          f"({final['fp32'].median_ms / final['auto'].median_ms:.2f}×), hand {final['hand'].median_ms:.4f} ms "
          f"({final['fp32'].median_ms / final['hand'].median_ms:.2f}×); auto/hand = {ratio:.3f} (target ≤ 1.05) "
          f"[{verdict(ok)}]")
    return ok


def node_profile(path: Path, feed: dict, work: Path, runs: int = 300) -> dict[str, float]:
    """Median microseconds per node from ONNX Runtime's profiler (1 thread)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.enable_profiling = True
    options.log_severity_level = 3
    options.profile_file_prefix = str(work / f"profile_{path.stem}")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    times = defaultdict(list)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            times[f"{event['name'][:-12]} ({event['args']['op_name']})"].append(event["dur"])
    return {name: float(np.median(values)) for name, values in times.items()}


def print_profile(title: str, baseline: Path, optimized: Path, feed: dict, work: Path) -> None:
    print(f"    profile of {title} (median µs per node, top 8):")
    for label, path in (("FP32", baseline), ("optimized", optimized)):
        profile = node_profile(path, feed, work)
        top = sorted(profile.items(), key=lambda kv: -kv[1])[:8]
        print(f"      {label:9s} total {sum(profile.values()):7.1f} µs: " + ", ".join(f"{n} {t:.0f}" for n, t in top))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per model and comparison")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # the hand grid calls ONNX Runtime's tools, which warn per tensor
    with tempfile.TemporaryDirectory(prefix="autoglm-bench-") as folder:
        work = Path(folder)
        os.environ[CACHE_ENV] = str(work / "cache")  # measured now, never read from an earlier run's cache
        run_all(work, args)


def run_all(work: Path, args) -> None:
    from engine.device.cpu_info import cpu_info

    info = cpu_info()
    print(f"{info.model}, {info.logical_cores} logical cores, ISA {' '.join(info.isa_flags)}; 1 intra-op thread, "
          f"median of {args.rounds} interleaved rounds × {args.seconds / args.rounds:.1f} s per model")

    cnn = load_model(CNN)
    a = fixed_recipe("a", work, cnn, {"quantization": {"method": "static_int8", "per_channel": True}}, InputRequest(),
                     args)
    if not print_fixed("(a) sample CNN, static_int8 per-channel", a, 1.8, 0.99):
        feed = ModelInputs(InputRequest(), 0, CalibrationSettings()).feed(FeedSpecs.of_onnx(CNN)).feed
        print_profile("(a)", CNN, a["result"].output_path, feed, work)

    cnn_module = load_model(CNN_FACTORY)
    b = fixed_recipe("b", work, cnn_module, {"pruning": {"method": "structured", "ratio": 0.5}},
                     InputRequest(shapes={"image": (1, 3, 64, 64)}), args)
    pruning = b["result"].steps[0].report
    print(f"    (b) parameters {pruning['parameters_before']} → {pruning['parameters_after']}; MACs "
          f"{b['result'].fidelity.original.macs.total} → {b['result'].fidelity.optimized.macs.total}")
    print_fixed("(b) sample CNN, structured pruning 50 %, exported to ONNX", b, 2.0, None)

    c = fixed_recipe("c", work, load_model(TRANSFORMER), {"quantization": {"method": "dynamic_int8"}}, InputRequest(),
                     args)
    if not print_fixed("(c) sample transformer, dynamic_int8", c, 1.3, None):
        feed = ModelInputs(InputRequest(), 0, CalibrationSettings()).feed(FeedSpecs.of_onnx(TRANSFORMER)).feed
        print_profile("(c)", TRANSFORMER, c["result"].output_path, feed, work)

    auto_versus_hand("(d) sample CNN, auto, cosine ≥ 0.99", CNN, work, args)
    auto_versus_hand("(d) sample transformer, auto, cosine ≥ 0.99", TRANSFORMER, work, args)


if __name__ == "__main__":
    main()
