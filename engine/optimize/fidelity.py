"""How far an optimized model's outputs are from the original's, on the same seeded inputs.

Compression is only worth what it keeps (DESIGN.md §4), so every optimized
model is graded against the original on M inputs: per output the mean and
worst cosine similarity, max absolute error, relative L2 error, SQNR and, for
logits, top-1 agreement; task accuracy when the user gives labelled data. The
report carries sizes, parameter counts and MACs of both models, which explain a
speedup but never replace the measured one.
"""

from __future__ import annotations

import math
import threading
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.backends import BackendOptions, get_backend
from engine.device.discovery import DeviceRunner
from engine.errors import CalibrationDataError, OptimizationCancelled
from engine.model.handle import ModelHandle
from engine.model.macs import MacsReport, count_macs
from engine.optimize.settings import AccuracyBudget

Feed = dict[str, np.ndarray]
LABEL_KEYS = ("labels", "label", "y")
_EPSILON = np.finfo(np.float64).tiny


@dataclass(frozen=True)
class OutputFidelity:
    name: str
    cosine: float  # mean over samples of each sample's cosine similarity
    cosine_min: float
    max_abs_error: float
    relative_l2: float
    sqnr_db: float  # inf when the outputs are identical
    top1_agreement: float | None  # for outputs that look like logits (float, last axis ≥ 2)

    def to_dict(self) -> dict:
        return {
            "name": self.name, "cosine": self.cosine, "cosine_min": self.cosine_min,
            "max_abs_error": self.max_abs_error, "relative_l2": self.relative_l2,
            "sqnr_db": None if math.isinf(self.sqnr_db) else self.sqnr_db, "identical": math.isinf(self.sqnr_db),
            "top1_agreement": self.top1_agreement,
        }


@dataclass(frozen=True)
class ModelSummary:
    path: str
    size_bytes: int
    parameters: int
    macs: MacsReport | None

    def to_dict(self, layers: bool = True) -> dict:
        macs = self.macs.to_dict() if self.macs else None
        if macs and not layers:
            macs.pop("layers")
        return {"path": self.path, "size_bytes": self.size_bytes, "parameters": self.parameters, "macs": macs}


@dataclass(frozen=True)
class BudgetCheck:
    budget: str
    met: bool
    violations: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"budget": self.budget, "met": self.met, "violations": list(self.violations)}


@dataclass(frozen=True)
class FidelityReport:
    samples: int
    outputs: tuple[OutputFidelity, ...]
    original: ModelSummary | None = None
    optimized: ModelSummary | None = None
    task_accuracy: dict | None = None
    budget: BudgetCheck | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def worst_cosine(self) -> float:
        return min(output.cosine for output in self.outputs)

    def to_dict(self) -> dict:
        return {
            "samples": self.samples,
            "outputs": [output.to_dict() for output in self.outputs],
            "original": self.original.to_dict() if self.original else None,
            "optimized": self.optimized.to_dict() if self.optimized else None,
            "task_accuracy": self.task_accuracy,
            "budget": self.budget.to_dict() if self.budget else None,
            "notes": list(self.notes),
        }


def compare_outputs(reference: Sequence[Feed], candidate: Sequence[Feed]) -> tuple[OutputFidelity, ...]:
    """Metrics per output; outputs are matched by name, or by position where the names differ."""
    if not reference or len(reference) != len(candidate):
        raise ValueError("compare_outputs needs the same, non-zero number of reference and candidate runs")
    ref_names, cand_names = list(reference[0]), list(candidate[0])
    pairs = [(n, n) for n in ref_names] if set(ref_names) <= set(cand_names) else list(zip(ref_names, cand_names))
    results = []
    for ref_name, cand_name in pairs:
        ref = [np.asarray(run[ref_name], dtype=np.float64) for run in reference]
        cand = [np.asarray(run[cand_name], dtype=np.float64) for run in candidate]
        results.append(_output_fidelity(ref_name, ref, cand))
    return tuple(results)


def _output_fidelity(name: str, ref: list[np.ndarray], cand: list[np.ndarray]) -> OutputFidelity:
    for a, b in zip(ref, cand):
        if a.shape != b.shape:
            raise ValueError(f"output '{name}': shapes differ between the models ({a.shape} vs {b.shape})")
    cosines = [_cosine(a.ravel(), b.ravel()) for a, b in zip(ref, cand)]
    flat_ref = np.concatenate([a.ravel() for a in ref])
    diff = flat_ref - np.concatenate([b.ravel() for b in cand])
    signal, noise = float(np.linalg.norm(flat_ref)), float(np.linalg.norm(diff))
    top1 = None
    if ref[0].ndim >= 2 and ref[0].shape[-1] >= 2:
        agree = [np.argmax(a, axis=-1) == np.argmax(b, axis=-1) for a, b in zip(ref, cand)]
        top1 = float(np.mean(np.concatenate([x.ravel() for x in agree])))
    return OutputFidelity(
        name=name,
        cosine=float(np.mean(cosines)),
        cosine_min=float(np.min(cosines)),
        max_abs_error=float(np.max(np.abs(diff))) if diff.size else 0.0,
        relative_l2=noise / max(signal, _EPSILON),
        sqnr_db=math.inf if noise == 0 else 20 * math.log10(max(signal, _EPSILON) / noise),
        top1_agreement=top1,
    )


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    if norm_a == 0 and norm_b == 0:
        return 1.0
    if norm_a == 0 or norm_b == 0:
        return 0.0
    return float(np.dot(a, b) / (norm_a * norm_b))


def check_budget(outputs: Sequence[OutputFidelity], budget: AccuracyBudget) -> BudgetCheck:
    violations = []
    for output in outputs:
        if budget.min_cosine is not None and output.cosine < budget.min_cosine:
            violations.append(f"'{output.name}': cosine {output.cosine:.5f} < {budget.min_cosine:g}")
        if budget.max_relative_error is not None and output.relative_l2 > budget.max_relative_error:
            violations.append(
                f"'{output.name}': relative error {output.relative_l2:.5f} > {budget.max_relative_error:g}"
            )
    if budget.max_top1_disagreement is not None:
        logits = [o for o in outputs if o.top1_agreement is not None]
        if not logits:
            violations.append("the budget limits top-1 disagreement, but no output looks like logits")
        for output in logits:
            disagreement = 1.0 - output.top1_agreement
            if disagreement > budget.max_top1_disagreement:
                limit = budget.max_top1_disagreement
                violations.append(f"'{output.name}': top-1 disagreement {disagreement:.4f} > {limit:g}")
    return BudgetCheck(budget.text(), not violations, tuple(violations))


class ModelRunner:
    """One open session of a model, run on many feeds (the session is created once)."""

    def __init__(self, handle: ModelHandle, runner: DeviceRunner | None = None):
        backend_name = handle.format.default_backend
        if runner is None or runner.backend != backend_name:
            runner = DeviceRunner(backend_name, "CPUExecutionProvider" if backend_name == "onnxruntime" else "cpu")
        backend = get_backend(backend_name)
        backend.import_runtime()
        self._session = backend.create_session(backend.load(handle), runner, BackendOptions())

    def run_all(self, feeds: Sequence[Feed], cancel: threading.Event | None = None,
                progress: Callable[[int], None] | None = None) -> list[Feed]:
        outputs = []
        for index, feed in enumerate(feeds):
            if cancel is not None and cancel.is_set():
                raise OptimizationCancelled("optimization cancelled; nothing was written")
            outputs.append(self._session.run(feed))
            if progress:
                progress(index + 1)
        return outputs

    def close(self) -> None:
        self._session.close()


def run_model(handle: ModelHandle, feeds: Sequence[Feed], runner: DeviceRunner | None = None,
              cancel: threading.Event | None = None) -> list[Feed]:
    session = ModelRunner(handle, runner)
    try:
        return session.run_all(feeds, cancel)
    finally:
        session.close()


def summarize_model(handle: ModelHandle, onnx_path: Path | None,
                    input_shapes: dict[str, tuple[int, ...]]) -> ModelSummary:
    """Size and parameters of `handle`; MACs from `onnx_path` (the handle itself, or an FP32 export of it)."""
    macs = count_macs(onnx_path, input_shapes) if onnx_path is not None else None
    return ModelSummary(str(handle.path), handle.size_bytes, handle.parameter_count, macs)


def load_labelled_data(path: Path, input_names: Sequence[str]) -> tuple[list[Feed], np.ndarray]:
    """Samples (one per entry of the first axis, batch 1) and labels from an .npz of inputs + `labels`."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as error:
        raise CalibrationDataError(f"accuracy data {path}: not a readable .npz file ({error})") from error
    label_key = next((key for key in LABEL_KEYS if key in arrays), None)
    missing = [name for name in input_names if name not in arrays]
    if label_key is None or missing:
        raise CalibrationDataError(
            f"accuracy data {path}: needs the model's inputs {list(input_names)} and a 'labels' array"
            + (f"; missing {missing}" if missing else "") + ("; no 'labels'" if label_key is None else "")
        )
    labels = arrays[label_key].reshape(-1)
    counts = {name: arrays[name].shape[0] if arrays[name].ndim else 0 for name in input_names}
    if any(count != len(labels) for count in counts.values()):
        raise CalibrationDataError(f"accuracy data {path}: {len(labels)} labels but inputs hold {counts} samples")
    feeds = [{name: np.ascontiguousarray(arrays[name][i:i + 1]) for name in input_names} for i in range(len(labels))]
    return feeds, labels


def accuracy(outputs: Sequence[Feed], labels: np.ndarray) -> float:
    """Top-1 accuracy of the first output that looks like logits."""
    name = next((n for n, v in outputs[0].items() if v.ndim >= 2 and v.shape[-1] >= 2), None)
    if name is None:
        raise CalibrationDataError("accuracy data: the model has no output that looks like class logits")
    predictions = np.array([int(np.argmax(run[name].reshape(-1, run[name].shape[-1])[0])) for run in outputs])
    return float(np.mean(predictions == labels.astype(np.int64)))
