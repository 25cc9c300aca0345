"""Per-output fidelity figures: what an output holds (`output_kind`), and the figures that mean something for it.

Every output gets mean and worst cosine similarity, max absolute error, relative L2 error and SQNR; logits also get
top-1/top-5 agreement and KL of the softmax, token embeddings the cosine of the pooled output, probability maps
the agreement of their thresholded values. An output that is ~0, constant or NaN on the inputs used is "not
measurable on these inputs": its figures are computed but never shown (`OutputFidelity.to_dict`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Feed = dict[str, np.ndarray]
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
