"""The bundle's `predict.py` and `README.txt`: what a user deploys, readable and free of the studio.

`predict.py` uses numpy plus onnxruntime (or torch) and nothing of ours, so it runs wherever those install.
Its settings (model file, provider, threads, input shapes) are written into it as plain constants, and the
synthetic inputs it makes without arguments follow the sample inputs' dtypes, shapes and integer ranges.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

from engine.backends import BackendOptions
from engine.device.discovery import DeviceRunner

_GRAPH_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
                 "all": "ORT_ENABLE_ALL"}
_EXECUTION_MODES = {"sequential": "ORT_SEQUENTIAL", "parallel": "ORT_PARALLEL"}

_HEADER = '''"""Run the model in this bundle{runtime_text}.

    python predict.py INPUTS.npz [-o OUTPUTS.npz]   # INPUTS.npz holds one array per input name below
    python predict.py [-o OUTPUTS.npz]              # seeded synthetic inputs with the shapes below

Needs only {requirements} (pip install {packages}); nothing of Open-AutoGLM Studio.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODEL = HERE / {model!r}
{settings}
# name: (dtype, shape, [low, high) of synthetic integers)
INPUTS = {inputs}
SEED = {seed!r}


def synthetic_inputs(seed=SEED):
    rng = np.random.default_rng(seed)
    feed = {{}}
    for name, (dtype, shape, (low, high)) in INPUTS.items():
        if np.issubdtype(np.dtype(dtype), np.floating):
            feed[name] = rng.standard_normal(shape).astype(dtype)
        else:
            feed[name] = rng.integers(low, high, shape).astype(dtype)
    return feed


def load_inputs(path):
    with np.load(path, allow_pickle=False) as archive:
        missing = [name for name in INPUTS if name not in archive.files]
        if missing:
            sys.exit(f"{{path}}: missing input(s) {{missing}}; the model takes {{list(INPUTS)}}")
        return {{name: np.ascontiguousarray(archive[name]) for name in INPUTS}}
'''

_ONNX_PREDICT = '''

def predict(feed, provider=PROVIDER):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if THREADS:
        options.intra_op_num_threads = THREADS
    if INTER_OP_THREADS:
        options.inter_op_num_threads = INTER_OP_THREADS
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION)
    options.execution_mode = getattr(ort.ExecutionMode, EXECUTION_MODE)
    providers = [(provider, PROVIDER_OPTIONS if provider == PROVIDER else {})]
    if provider != "CPUExecutionProvider":
        providers.append(("CPUExecutionProvider", {}))  # for nodes the accelerator cannot run
    session = ort.InferenceSession(str(MODEL), options, providers=providers)
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, feed)))
'''

_TORCH_PREDICT = '''

def predict(feed, provider=PROVIDER):
    import torch

    if THREADS:
        torch.set_num_threads(THREADS)
    device = torch.device(provider)
    module = {loader}
    tensors = [torch.from_numpy(feed[name]).to(device) for name in INPUTS]
    with torch.inference_mode():
        result = module(*tensors)
    if isinstance(result, torch.Tensor):
        return {{"output": result.cpu().numpy()}}
    if isinstance(result, dict):
        return {{str(key): value.cpu().numpy() for key, value in result.items()}}
    return {{f"output_{{index}}": value.cpu().numpy() for index, value in enumerate(result)}}
'''

_TORCH_LOADERS = {
    "torchscript": "torch.jit.load(str(MODEL), map_location=device).eval()",
    "pt2": "torch.export.load(str(MODEL)).module().to(device)",
}

_MAIN = '''

def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the bundled model on an .npz of inputs, or on synthetic ones.")
    parser.add_argument("inputs", nargs="?", help="an .npz whose keys are the input names (default: synthetic)")
    parser.add_argument("-o", "--output", help="write the outputs to this .npz")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the synthetic inputs")
    parser.add_argument("--provider", default=PROVIDER, help=f"where to run (default {PROVIDER})")
    args = parser.parse_args(argv)
    feed = load_inputs(args.inputs) if args.inputs else synthetic_inputs(args.seed)
    outputs = predict(feed, args.provider)
    if args.output:
        np.savez(args.output, **outputs)
    for name, value in outputs.items():
        print(f"{name}: {value.dtype} {list(value.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def synthetic_ranges(feed: Mapping[str, np.ndarray], index_bounds: Mapping[str, int] | None = None
                     ) -> dict[str, tuple[str, list[int], list[int]]]:
    """Each input's dtype, shape and integer range: token ids below the model's vocabulary where it shows it, else
    the sample inputs' own range (so masks stay ones and type ids zeros)."""
    specs = {}
    for name, array in feed.items():
        if np.issubdtype(array.dtype, np.floating) or array.size == 0:
            bounds = [0, 1]
        elif index_bounds and name in index_bounds:
            bounds = [0, int(index_bounds[name])]
        else:
            bounds = [int(array.min()), int(array.max()) + 1]
        specs[name] = (array.dtype.name, [int(d) for d in array.shape], bounds)
    return specs


def predict_script(model_file: str, bundle_format: str, runner: DeviceRunner, options: BackendOptions,
                   sample_feed: Mapping[str, np.ndarray], seed: int, index_bounds: Mapping[str, int] | None = None
                   ) -> str:
    ranges = synthetic_ranges(sample_feed, index_bounds)
    inputs = "{\n" + "".join(f"    {name!r}: ({dtype!r}, {shape!r}, ({low!r}, {high!r})),\n"
                             for name, (dtype, shape, (low, high)) in ranges.items()) + "}"
    if bundle_format == "onnx":
        settings = "\n".join([
            f"PROVIDER = {runner.provider!r}",
            f"PROVIDER_OPTIONS = {dict(runner.options)!r}",
            f"THREADS = {options.threads!r}  # intra-op threads; None: ONNX Runtime's default",
            f"INTER_OP_THREADS = {options.inter_op_threads!r}",
            f"GRAPH_OPTIMIZATION = {_GRAPH_LEVELS[options.graph_optimization_level]!r}",
            f"EXECUTION_MODE = {_EXECUTION_MODES[options.execution_mode]!r}",
        ])
        body, runtime, requirements = _ONNX_PREDICT, " with plain ONNX Runtime", "numpy and onnxruntime"
    else:
        settings = "\n".join([
            f"PROVIDER = {runner.provider!r}  # a torch device",
            f"THREADS = {options.threads!r}  # intra-op threads; None: torch's default",
        ])
        body = _TORCH_PREDICT.format(loader=_TORCH_LOADERS[bundle_format])
        runtime, requirements = " with plain PyTorch", "numpy and torch"
    header = _HEADER.format(runtime_text=runtime, requirements=requirements, model=model_file, settings=settings,
                            packages=requirements.replace(" and", ""),
                            inputs=inputs, seed=seed)
    return header + body + _MAIN


def _fidelity_lines(fidelity: Mapping | None) -> list[str]:
    """The fidelity figure with the data it was measured on (synthetic or real), and the budget's verdict."""
    if not fidelity or not fidelity.get("summary"):
        return []
    budget = fidelity.get("budget") or {}
    verdict = f"; budget {budget['budget']}: {budget.get('verdict', 'met' if budget.get('met') else 'not met')}" \
        if budget.get("budget") else ""
    return [f"Fidelity against the original model: {fidelity['summary']}{verdict}."]


def readme_text(manifest: Mapping) -> str:
    """How to use the bundle, for someone who has never seen the studio."""
    model, runtime = manifest["model"], manifest["runtime"]
    inputs = "\n".join(f"    {spec['name']}: {spec['dtype']} {json.dumps(spec['shape'])}" for spec in model["inputs"])
    outputs = "\n".join(f"    {spec['name']}: {spec['dtype']} {json.dumps(spec['shape'])}" for spec in model["outputs"])
    requirement = "onnxruntime" if runtime["backend"] == "onnxruntime" else "torch"
    benchmark = manifest.get("benchmark")
    data = (benchmark or {}).get("inputs") or {}
    on = f", on {data['source']}" if data.get("source") else ""
    measured = (f"Measured by run {benchmark.get('run_id')} on {benchmark.get('device')}{on}: see report.html and "
                "manifest.json (\"benchmark\").") if benchmark else "No benchmark run was attached to this bundle."
    lines = [
        f"Deployment bundle: {model['name']} ({model['format']})",
        f"Made by {manifest['tool']['name']} {manifest['tool']['version']} on {manifest['created_at']}.",
        "",
        "Files",
        *(f"    {name}" for name in model["files"]),
        "    predict.py         runs the model; needs only numpy and " + requirement,
        "    sample_inputs.npz  the inputs the studio checked the model with",
        "    recipe.json        the optimization recipe that produced the model"
        + ("" if manifest["recipe"]["applied"] else " (every pass off: it was not optimized)"),
        "    manifest.json      sha256 of every file, inputs and outputs, runtime, fidelity, benchmark",
        *(["    report.html        model card, fidelity and latency plots"] if manifest.get("report") else []),
        "",
        "Run it",
        f"    pip install numpy {requirement}",
        "    python predict.py sample_inputs.npz -o outputs.npz",
        "    python predict.py                  # seeded synthetic inputs",
        "",
        f"Intended runtime: {runtime['backend']} on {runtime['provider']}"
        + (f" with options {json.dumps(runtime['provider_options'])}" if runtime.get("provider_options") else ""),
        "",
        "Inputs",
        inputs or "    (none)",
        "Outputs",
        outputs or "    (none)",
        "",
        measured,
        *_fidelity_lines(manifest.get("fidelity")),
        "",
        "Check it",
        "    autoglm-studio verify-bundle THIS_FOLDER",
        "    checks every file's sha256 against manifest.json, then runs predict.py in a clean process and",
        "    confirms its outputs equal the studio's for the same inputs.",
    ]
    return "\n".join(lines) + "\n"
