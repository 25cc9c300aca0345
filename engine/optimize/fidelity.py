"""How far an optimized model's outputs are from the original's, on the same seeded inputs.

Compression is only worth what it keeps (DESIGN.md §4), so every optimized
model is graded against the original on M inputs, per output with the figures
that fit what it holds (engine.optimize.output_metrics), and by task accuracy
when the user gives labelled data. An output not measurable on these inputs
leaves the budget not judged, so not met. The report says what data it was
measured on (synthetic or the user's), and carries sizes, parameter counts and
MACs of both models, which explain a speedup but never replace the measured one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.backends import BackendOptions, get_backend
from engine.device.discovery import DeviceRunner
from engine.errors import CalibrationDataError, OptimizationCancelled, first_line
from engine.model.array_files import ArrayFileError, read_npz
from engine.model.handle import ModelHandle
from engine.model.macs import MacsReport, count_macs
from engine.optimize.output_metrics import LOGITS, Feed, OutputFidelity
from engine.optimize.settings import AccuracyBudget

LABEL_KEYS = ("labels", "label", "y")


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
    """The verdict: met only when every output could be judged and none broke a limit."""

    budget: str
    met: bool
    violations: tuple[str, ...]
    not_judged: tuple[str, ...] = ()  # outputs (or limits) the inputs used could not judge
    notes: tuple[str, ...] = ()
    default: bool = False  # the default budget (AccuracyBudget.default()), applied because the recipe set none

    @property
    def verdict(self) -> str:
        return "met" if self.met else "below budget" if self.violations else "not judged"

    def to_dict(self) -> dict:
        return {"budget": self.budget, "source": "default" if self.default else "recipe", "met": self.met,
                "verdict": self.verdict, "violations": list(self.violations), "not_judged": list(self.not_judged),
                "notes": list(self.notes)}


@dataclass(frozen=True)
class FidelityReport:
    samples: int
    outputs: tuple[OutputFidelity, ...]
    original: ModelSummary | None = None
    optimized: ModelSummary | None = None
    task_accuracy: dict | None = None
    budget: BudgetCheck | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    data: str = ""  # what the inputs were, in words (ModelInputs.describe_fidelity_data)
    synthetic: bool = True  # measured on made-up inputs rather than the user's data

    @property
    def worst_cosine(self) -> float | None:
        """The lowest cosine over the outputs that could be measured; None when none could."""
        cosines = [output.cosine for output in self.outputs if output.measurable]
        return min(cosines) if cosines else None

    @property
    def accepted(self) -> bool:
        return self.budget is not None and self.budget.met

    def summary(self) -> str:
        """The headline figure with the data it was measured on: "worst cosine 0.998 (on 32 synthetic inputs)"."""
        on = f"(on {self.samples} {'synthetic' if self.synthetic else 'real'} inputs)"
        worst = self.worst_cosine
        if worst is None:
            return f"not measurable on these inputs {on}"
        partial = " of the measurable outputs" if any(not o.measurable for o in self.outputs) else ""
        return f"worst cosine{partial} {worst:.5f} {on}"

    def to_dict(self) -> dict:
        return {
            "samples": self.samples,
            "data": {"description": self.data, "synthetic": self.synthetic},
            "summary": self.summary(),
            "outputs": [output.to_dict() for output in self.outputs],
            "original": self.original.to_dict() if self.original else None,
            "optimized": self.optimized.to_dict() if self.optimized else None,
            "task_accuracy": self.task_accuracy,
            "budget": self.budget.to_dict() if self.budget else None,
            "notes": list(self.notes),
        }


def check_budget(outputs: Sequence[OutputFidelity], budget: AccuracyBudget) -> BudgetCheck:
    """Each limit on each output it applies to. An output that cannot be judged on these inputs, or a top-1 limit
    set for a model with no classifier output, makes the verdict "not judged", which is not met."""
    default = budget == AccuracyBudget.default()
    violations, not_judged, notes = [], [], []
    for output in outputs:
        if not output.measurable:
            not_judged.append(f"'{output.name}': not measurable on these inputs: {output.not_measurable}")
            continue
        if output.optimized_not_finite:
            violations.append(f"'{output.name}': the optimized model gives NaN or inf")
        if budget.min_cosine is not None and output.cosine < budget.min_cosine:
            violations.append(f"'{output.name}': cosine {output.cosine:.5f} < {budget.min_cosine:g}")
        if budget.max_relative_error is not None and output.relative_l2 > budget.max_relative_error:
            violations.append(
                f"'{output.name}': relative error {output.relative_l2:.5f} > {budget.max_relative_error:g}"
            )
    if budget.max_top1_disagreement is not None:
        logits = [o for o in outputs if o.kind == LOGITS]
        if not logits:
            message = "no output looks like class scores, so the top-1 limit does not apply"
            (notes if default else not_judged).append(message)
        for output in logits:
            if not output.measurable:
                continue
            disagreement = 1.0 - output.top1_agreement
            if disagreement > budget.max_top1_disagreement:
                limit = budget.max_top1_disagreement
                violations.append(f"'{output.name}': top-1 disagreement {disagreement:.4f} > {limit:g}")
    met = not violations and not not_judged
    return BudgetCheck(budget.text(), met, tuple(violations), tuple(not_judged), tuple(notes), default)


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
        arrays = read_npz(path)
    except (ArrayFileError, OSError) as error:
        raise CalibrationDataError(f"accuracy data {path}: {first_line(error)}") from error
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
