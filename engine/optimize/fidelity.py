"""How far an optimized model's outputs are from the original's, on the same seeded inputs.

Compression is only worth what it keeps (DESIGN.md §4), so every optimized
model is graded against the original on M inputs: per output the mean and
worst cosine similarity, max absolute error, relative L2 error, SQNR, and the
figures that fit what the output holds (`output_kind`): top-1/top-5 agreement and
KL for logits, the pooled cosine for token embeddings, thresholded agreement for
probability maps; task accuracy when the user gives labelled data. An output that
is ~0, constant or NaN on the inputs used is "not measurable on these inputs":
its figures are never shown, and the budget is not judged, so not met. The
report says what data it was measured on (synthetic or the user's), and carries
sizes, parameter counts and MACs of both models, which explain a speedup but
never replace the measured one.
"""

from __future__ import annotations

import math
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
from engine.optimize.settings import AccuracyBudget

Feed = dict[str, np.ndarray]
LABEL_KEYS = ("labels", "label", "y")
_EPSILON = np.finfo(np.float64).tiny

# What an output is, guessed from its name, shape, dtype and values (`output_kind`), and the figures that mean
# something for it. Every kind also gets relative L2 error and SQNR.
LOGITS, EMBEDDING, MAP, VALUES = "logits", "embedding", "map", "values"
KIND_METRICS = {
    LOGITS: ("cosine", "top-1 agreement", "top-5 agreement", "KL divergence of the softmax"),
    EMBEDDING: ("cosine of each output", "cosine of the pooled output (mean over tokens)"),
    MAP: ("cosine", "max abs error", "agreement of the maps thresholded at 0.5 (for maps of values in [0, 1])"),
    VALUES: ("cosine", "max abs error"),
}
_EMBEDDING_HINTS = ("embed", "hidden", "pool", "feature", "encod", "vector", "sentence")
_LOGITS_HINTS = ("logit", "prob", "softmax", "class", "cls")
NEAR_ZERO = 1e-6  # an output whose largest magnitude on every input is below this is ~0: cosine means nothing
NEAR_CONSTANT = 1e-6  # spread (max - min) within each input's output, relative to max |x|, below which it is constant
TOP_K = 5
MAP_THRESHOLD = 0.5


def output_kind(name: str, sample: np.ndarray) -> str:
    """What an output holds, to choose its metrics; simple rules, in order:

    1. an integer or boolean output holds values (ids, counts, masks): cosine and max error;
    2. a name with embed/hidden/pool/feature/encod/vector/sentence is an embedding; one with
       logit/prob/softmax/class/cls (and a last axis of 2 or more) is logits;
    3. rank 4 and above, or rank 3, is a dense map (a detector's or segmenter's output);
    4. rank 2 with a last axis of 2 or more is logits (one row of class scores per input), unless every row has
       unit L2 norm, which is a normalized embedding;
    5. anything else holds values.
    """
    lowered = name.lower()
    if not np.issubdtype(sample.dtype, np.floating):
        return VALUES
    if any(hint in lowered for hint in _EMBEDDING_HINTS):
        return EMBEDDING
    classes = sample.shape[-1] if sample.ndim >= 1 else 0
    if any(hint in lowered for hint in _LOGITS_HINTS) and sample.ndim >= 2 and classes >= 2:
        return LOGITS
    if sample.ndim >= 3:
        return MAP
    if sample.ndim == 2 and classes >= 2:
        rows = np.linalg.norm(np.asarray(sample, dtype=np.float64), axis=-1)
        return EMBEDDING if np.allclose(rows, 1.0, atol=1e-3) and np.any(sample < 0) else LOGITS
    return VALUES


@dataclass(frozen=True)
class OutputFidelity:
    name: str
    cosine: float  # mean over samples of each sample's cosine similarity
    cosine_min: float
    max_abs_error: float
    relative_l2: float
    sqnr_db: float  # inf when the outputs are identical
    top1_agreement: float | None  # logits only
    kind: str = VALUES
    top5_agreement: float | None = None  # logits with more than 5 classes: the original's top-1 in the top 5
    kl_divergence: float | None = None  # logits: mean KL(original ‖ optimized) of the softmax, in nats
    pooled_cosine: float | None = None  # embeddings of rank 3+: cosine of the mean over tokens
    threshold_agreement: float | None = None  # maps of values in [0, 1]: share of elements on the same side of 0.5
    not_measurable: str | None = None  # why the figures mean nothing on these inputs; None when they do
    optimized_not_finite: bool = False  # the optimized model gave NaN or inf where the original did not

    @property
    def measurable(self) -> bool:
        return self.not_measurable is None

    def to_dict(self) -> dict:
        """The figures; all None for an output whose figures mean nothing on these inputs (with the reason)."""
        shown = self.measurable
        figures = {
            "cosine": self.cosine, "cosine_min": self.cosine_min, "max_abs_error": self.max_abs_error,
            "relative_l2": self.relative_l2, "sqnr_db": None if math.isinf(self.sqnr_db) else self.sqnr_db,
            "top1_agreement": self.top1_agreement, "top5_agreement": self.top5_agreement,
            "kl_divergence": self.kl_divergence, "pooled_cosine": self.pooled_cosine,
            "threshold_agreement": self.threshold_agreement,
        }
        return {
            "name": self.name, "kind": self.kind, "metrics": list(KIND_METRICS[self.kind]),
            **{key: value if shown else None for key, value in figures.items()},
            "identical": shown and math.isinf(self.sqnr_db),
            "not_measurable": self.not_measurable, "optimized_not_finite": self.optimized_not_finite,
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


def compare_outputs(reference: Sequence[Feed], candidate: Sequence[Feed]) -> tuple[OutputFidelity, ...]:
    """Metrics per output, chosen by its kind; outputs are matched by name, or by position where the names differ."""
    if not reference or len(reference) != len(candidate):
        raise ValueError("compare_outputs needs the same, non-zero number of reference and candidate runs")
    ref_names, cand_names = list(reference[0]), list(candidate[0])
    pairs = [(n, n) for n in ref_names] if set(ref_names) <= set(cand_names) else list(zip(ref_names, cand_names))
    results = []
    for ref_name, cand_name in pairs:
        sample = np.asarray(reference[0][ref_name])
        ref = [np.asarray(run[ref_name], dtype=np.float64) for run in reference]
        cand = [np.asarray(run[cand_name], dtype=np.float64) for run in candidate]
        reason = degenerate_reason(ref) if np.issubdtype(sample.dtype, np.floating) else None
        results.append(_output_fidelity(ref_name, output_kind(ref_name, sample), ref, cand, reason))
    return tuple(results)


def degenerate_reason(ref: Sequence[np.ndarray]) -> str | None:
    """Why a float output's figures would mean nothing on these inputs (NaN/inf, ~0, constant), or None.

    Constant means every element of the output equal on every input (a single-element output, e.g. a count,
    can be constant and still compared). Integer and boolean outputs (ids, counts, masks) are never degenerate:
    equal values are a real agreement.
    """
    flat = np.concatenate([a.ravel() for a in ref]) if ref else np.zeros(0)
    if flat.size == 0:
        return "the original model gives empty outputs on these inputs"
    if not np.all(np.isfinite(flat)):
        return "the original model gives NaN or inf on these inputs"
    largest = float(np.max(np.abs(flat)))
    if largest < NEAR_ZERO:
        return f"the original model's outputs are ~0 on these inputs (largest |value| {largest:.1e})"
    if all(a.size > 1 and np.ptp(a) <= NEAR_CONSTANT * largest for a in ref):
        return f"the original model's output is constant on these inputs (every value ≈ {float(flat[0]):.4g})"
    return None


def _output_fidelity(name: str, kind: str, ref: list[np.ndarray], cand: list[np.ndarray],
                     reason: str | None) -> OutputFidelity:
    for a, b in zip(ref, cand):
        if a.shape != b.shape:
            raise ValueError(f"output '{name}': shapes differ between the models ({a.shape} vs {b.shape})")
    not_finite = reason is None and not all(np.all(np.isfinite(b)) for b in cand)
    if reason is not None:  # figures on garbage would look meaningful: compute them on zeros-for-NaN, never show them
        ref = [np.nan_to_num(a) for a in ref]
    cand = [np.nan_to_num(b) for b in cand]
    cosines = [_cosine(a.ravel(), b.ravel()) for a, b in zip(ref, cand)]
    flat_ref = np.concatenate([a.ravel() for a in ref])
    diff = flat_ref - np.concatenate([b.ravel() for b in cand])
    signal, noise = float(np.linalg.norm(flat_ref)), float(np.linalg.norm(diff))
    extra = {}
    if kind == LOGITS:
        extra = _classifier_figures(ref, cand)
    elif kind == EMBEDDING and ref[0].ndim >= 3:
        extra = {"pooled_cosine": float(np.mean([_cosine(_pooled(a), _pooled(b)) for a, b in zip(ref, cand)]))}
    elif kind == MAP and 0.0 <= float(np.min(flat_ref)) and float(np.max(flat_ref)) <= 1.0:
        same = [(a > MAP_THRESHOLD) == (b > MAP_THRESHOLD) for a, b in zip(ref, cand)]
        extra = {"threshold_agreement": float(np.mean(np.concatenate([x.ravel() for x in same])))}
    return OutputFidelity(
        name=name,
        cosine=float(np.mean(cosines)),
        cosine_min=float(np.min(cosines)),
        max_abs_error=float(np.max(np.abs(diff))) if diff.size else 0.0,
        relative_l2=noise / max(signal, _EPSILON),
        sqnr_db=math.inf if noise == 0 else 20 * math.log10(max(signal, _EPSILON) / noise),
        top1_agreement=extra.pop("top1_agreement", None),
        kind=kind, not_measurable=reason, optimized_not_finite=not_finite, **extra,
    )


def _classifier_figures(ref: list[np.ndarray], cand: list[np.ndarray]) -> dict:
    """Top-1 and top-5 agreement and the KL divergence of the softmax, one row of class scores at a time."""
    classes = ref[0].shape[-1]
    rows_ref = np.concatenate([a.reshape(-1, classes) for a in ref])
    rows_cand = np.concatenate([b.reshape(-1, classes) for b in cand])
    top1 = np.argmax(rows_ref, axis=-1)
    figures = {"top1_agreement": float(np.mean(top1 == np.argmax(rows_cand, axis=-1)))}
    if classes > TOP_K:
        top5 = np.argpartition(-rows_cand, TOP_K - 1, axis=-1)[:, :TOP_K]
        figures["top5_agreement"] = float(np.mean(np.any(top5 == top1[:, None], axis=-1)))
    is_probability = bool(np.all(rows_ref >= 0) and np.allclose(rows_ref.sum(axis=-1), 1.0, atol=1e-3))
    p, q = (rows_ref, rows_cand) if is_probability else (_softmax(rows_ref), _softmax(rows_cand))
    p, q = np.clip(p, 1e-12, 1.0), np.clip(q, 1e-12, 1.0)
    figures["kl_divergence"] = float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=-1)))
    return figures


def _softmax(rows: np.ndarray) -> np.ndarray:
    shifted = np.exp(rows - np.max(rows, axis=-1, keepdims=True))
    return shifted / np.sum(shifted, axis=-1, keepdims=True)


def _pooled(array: np.ndarray) -> np.ndarray:
    """Mean over every axis between the first (batch) and the last (features): a sentence embedding from tokens."""
    return array.mean(axis=tuple(range(1, array.ndim - 1))).ravel()


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    if norm_a == 0 and norm_b == 0:
        return 1.0
    if norm_a == 0 or norm_b == 0:
        return 0.0
    return float(np.dot(a, b) / (norm_a * norm_b))


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
