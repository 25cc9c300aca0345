"""What the user asked the optimizer to do: plain dataclasses, validated, with a JSON round-trip.

A recipe is saved next to results and passed between the GUI, the CLI and the
engine, so it must survive JSON unchanged and reject anything it does not
understand with a message naming the field and what it allows, never by
silently ignoring it.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from core.atomic_files import write_text_atomically
from engine.errors import RecipeError

PRUNING_METHODS = ("none", "unstructured", "structured")
PRUNING_IMPORTANCES = ("l1", "l2", "taylor")
LOW_RANK_METHODS = ("none", "rank_ratio", "energy")
GRAPH_LEVELS = ("none", "basic", "extended", "all")
QUANTIZATION_METHODS = ("none", "dynamic_int8", "static_int8", "fp16", "auto")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
ACTIVATION_TYPES = ("uint8", "int8")
SENSITIVITY_METHODS = ("auto", "exclude_one", "sqnr")


@dataclass(frozen=True)
class _Range:
    """Allowed numeric range; open ends exclude the bound."""

    low: float | None
    high: float | None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def contains(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))

    def text(self, name: str) -> str:
        left = "" if self.low is None else f"{self.low:g} {'<' if self.low_open else '≤'} "
        right = "" if self.high is None else f" {'<' if self.high_open else '≤'} {self.high:g}"
        kind = "a whole number" if self.integer else "a number"
        return f"{kind} {left}{name}{right}".rstrip()


def _number(default, low=None, high=None, *, low_open=False, high_open=False, integer=False, optional=False):
    rule = _Range(low, high, low_open, high_open, integer)
    return field(default=default, metadata={"range": rule, "optional": optional})


def _choice(default: str, options: tuple[str, ...]):
    return field(default=default, metadata={"choices": options})


def _flag(default: bool):
    return field(default=default, metadata={"bool": True})


def _names(optional: bool = False):
    """A list of node or module names (None allowed where `optional`: a library default applies)."""
    return field(default=None if optional else MISSING, default_factory=MISSING if optional else list,
                 metadata={"names": True, "optional": optional})


def _path(optional: bool = True):
    return field(default=None, metadata={"path": True, "optional": optional})


class _Section:
    section: ClassVar[str]

    def __post_init__(self) -> None:
        for spec in fields(self):
            _check(f"{self.section}.{spec.name}", getattr(self, spec.name), spec.metadata)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any):
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise RecipeError(f"recipe section '{cls.section}' must be an object, got {type(data).__name__}")
        known = {spec.name for spec in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RecipeError(
                f"recipe section '{cls.section}' has unknown field(s) {unknown}; allowed: {sorted(known)}"
            )
        return cls(**data)


def _check(name: str, value: Any, meta) -> None:
    if value is None and meta.get("optional"):
        return
    if "choices" in meta:
        if value not in meta["choices"]:
            choices = list(meta["choices"])
            raise RecipeError(f"recipe field '{name}' = {value!r} is not allowed; choose one of {choices}")
    elif "bool" in meta:
        if not isinstance(value, bool):
            raise RecipeError(f"recipe field '{name}' must be true or false, got {value!r}")
    elif "range" in meta:
        rule: _Range = meta["range"]
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not numeric or (rule.integer and not isinstance(value, int)) or not math.isfinite(value):
            raise RecipeError(f"recipe field '{name}' must be {rule.text(name.split('.')[-1])}, got {value!r}")
        if not rule.contains(value):
            allowed = rule.text(name.split(".")[-1])
            raise RecipeError(f"recipe field '{name}' = {value!r} is out of range: allowed {allowed}")
    elif "names" in meta:
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise RecipeError(f"recipe field '{name}' must be a list of non-empty names, got {value!r}")
    elif "path" in meta and not (isinstance(value, str) and value.strip()):
        raise RecipeError(f"recipe field '{name}' must be a file or folder path, got {value!r}")


@dataclass
class PruningSettings(_Section):
    """Removes channels (structured) or zeroes weights (unstructured); needs a PyTorch module."""

    section: ClassVar[str] = "pruning"
    method: str = _choice("none", PRUNING_METHODS)
    # Share of channels (structured) or of weights (unstructured) removed.
    ratio: float = _number(0.5, 0.0, 1.0, low_open=True, high_open=True)
    importance: str = _choice("l1", PRUNING_IMPORTANCES)
    # Module names kept whole; empty means the classifier (the last Linear layer).
    ignored_layers: list[str] = _names()
    round_to: int | None = _number(None, 1, 1024, integer=True, optional=True)
    global_pruning: bool = _flag(False)
    # Attention heads are removed with the same ratio (head width kept) where the model says how many it has.
    prune_heads: bool = _flag(True)


@dataclass
class LowRankSettings(_Section):
    """SVD factorization of Linear weights, kept only where it lowers the work."""

    section: ClassVar[str] = "low_rank"
    method: str = _choice("none", LOW_RANK_METHODS)
    rank_ratio: float = _number(0.5, 0.0, 1.0, low_open=True, high_open=True)  # kept rank / full rank
    energy: float = _number(0.9, 0.0, 1.0, low_open=True)  # kept share of the squared singular values
    ignored_layers: list[str] = _names()


@dataclass
class GraphSettings(_Section):
    """ONNX Runtime graph optimization, saved as a file so the fusions are a visible step."""

    section: ClassVar[str] = "graph"
    level: str = _choice("none", GRAPH_LEVELS)


@dataclass
class CalibrationSettings(_Section):
    """Data for static INT8 calibration, Taylor importance and auto-mode sensitivity."""

    section: ClassVar[str] = "calibration"
    source: str | None = _path()  # None: seeded synthetic inputs from the input settings; else .npz or a folder
    samples: int = _number(32, 1, 100_000, integer=True)


@dataclass
class QuantizationSettings(_Section):
    section: ClassVar[str] = "quantization"
    method: str = _choice("none", QUANTIZATION_METHODS)
    per_channel: bool = _flag(False)
    calibration_method: str = _choice("minmax", CALIBRATION_METHODS)
    percentile: float = _number(99.999, 90.0, 100.0, low_open=True)  # for the percentile method
    activation_type: str = _choice("uint8", ACTIVATION_TYPES)
    reduce_range: bool = _flag(False)  # 7-bit weights: helps accuracy on CPUs without VNNI
    nodes_to_exclude: list[str] = _names()
    op_block_list: list[str] | None = _names(optional=True)  # fp16: op types kept FP32; None: the library default
    keep_io_types: bool = _flag(True)  # fp16: inputs and outputs stay float32
    auto_seconds_per_candidate: float = _number(2.0, 0.0, 600.0, low_open=True)
    auto_max_fp32_nodes: int = _number(16, 0, 100_000, integer=True)  # most nodes auto keeps in FP32
    auto_sensitivity: str = _choice("auto", SENSITIVITY_METHODS)


@dataclass
class AccuracyBudget(_Section):
    """Fidelity the optimized model must keep against the original; None means no limit."""

    section: ClassVar[str] = "budget"
    min_cosine: float | None = _number(None, -1.0, 1.0, optional=True)
    max_top1_disagreement: float | None = _number(None, 0.0, 1.0, optional=True)
    max_relative_error: float | None = _number(None, 0.0, None, optional=True)

    @property
    def is_set(self) -> bool:
        return any(value is not None for value in asdict(self).values())

    def text(self) -> str:
        parts = []
        if self.min_cosine is not None:
            parts.append(f"cosine ≥ {self.min_cosine:g}")
        if self.max_top1_disagreement is not None:
            parts.append(f"top-1 disagreement ≤ {self.max_top1_disagreement:g}")
        if self.max_relative_error is not None:
            parts.append(f"relative error ≤ {self.max_relative_error:g}")
        return ", ".join(parts) or "none"


_SECTIONS = {
    "pruning": PruningSettings,
    "low_rank": LowRankSettings,
    "graph": GraphSettings,
    "calibration": CalibrationSettings,
    "quantization": QuantizationSettings,
    "budget": AccuracyBudget,
}
DEFAULT_AUTO_BUDGET = AccuracyBudget(min_cosine=0.99)


@dataclass
class Recipe:
    pruning: PruningSettings = field(default_factory=PruningSettings)
    low_rank: LowRankSettings = field(default_factory=LowRankSettings)
    graph: GraphSettings = field(default_factory=GraphSettings)
    calibration: CalibrationSettings = field(default_factory=CalibrationSettings)
    quantization: QuantizationSettings = field(default_factory=QuantizationSettings)
    budget: AccuracyBudget = field(default_factory=AccuracyBudget)
    fidelity_samples: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        for name, kind in _SECTIONS.items():
            if not isinstance(getattr(self, name), kind):
                raise RecipeError(f"recipe section '{name}' must be a {kind.__name__}")
        _check("fidelity_samples", self.fidelity_samples, {"range": _Range(1, 100_000, integer=True)})
        _check("seed", self.seed, {"range": _Range(0, 2**32 - 1, integer=True)})

    @property
    def effective_budget(self) -> AccuracyBudget:
        """The budget; auto quantization without one uses cosine ≥ 0.99 (and says so)."""
        if self.quantization.method == "auto" and not self.budget.is_set:
            return DEFAULT_AUTO_BUDGET
        return self.budget

    def to_dict(self) -> dict:
        return {
            **{name: getattr(self, name).to_dict() for name in _SECTIONS},
            "fidelity_samples": self.fidelity_samples,
            "seed": self.seed,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_canonical_json(self) -> str:
        """One spelling per recipe (sorted keys, no spaces), so equal recipes hash equal."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> Recipe:
        if not isinstance(data, dict):
            raise RecipeError(f"a recipe must be a JSON object, got {type(data).__name__}")
        allowed = {*_SECTIONS, "fidelity_samples", "seed"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise RecipeError(f"recipe has unknown field(s) {unknown}; allowed: {sorted(allowed)}")
        sections = {name: kind.from_dict(data.get(name)) for name, kind in _SECTIONS.items()}
        return cls(**sections, fidelity_samples=data.get("fidelity_samples", 32), seed=data.get("seed", 0))

    @classmethod
    def from_json(cls, text: str) -> Recipe:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise RecipeError(f"the recipe is not valid JSON: {error}") from error
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise RecipeError(f"{path}: cannot read the recipe ({error.strerror or error})") from error
        try:
            return cls.from_json(text)
        except RecipeError as error:
            raise RecipeError(f"{path}: {error}") from error

    def save(self, path: str | Path) -> None:
        """Temp file beside the target, then rename: a failure never leaves a half-written recipe."""
        write_text_atomically(path, self.to_json() + "\n")
