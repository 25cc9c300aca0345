"""What the user asked the optimizer to do: plain dataclasses, validated, with a JSON round-trip.

A recipe is saved next to results and passed between the GUI, the CLI and the
engine, so it must survive JSON unchanged and reject anything it does not
understand with a message naming the field and what it allows, never by
silently ignoring it.

The pass sections are not written out here: each is built from the passes that
name it, as a selector ("method", or "level" for graph) whose values are those
passes' choices, plus every knob of their configs. `RECIPE_SECTIONS` describes
every knob, shared sections and the recipe's own included, for the command line
and the GUI form, so a knob declared on a config reaches all of them.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, Field, dataclass, field, fields, make_dataclass
from pathlib import Path
from typing import Any

from core import bounded_json
from core.atomic_files import write_text_atomically
from engine.device.discovery import DeviceRunner
from engine.errors import RecipeError
from engine.optimize.params import (
    FROM_DEVICE,
    FROM_RECIPE,
    KNOB,
    Param,
    Section,
    integer,
    knob_fields,
)
from engine.optimize.passes import (
    GRAPH,
    LOW_RANK,
    PRUNING,
    QUANTIZATION,
    OptimizationPass,
    PassSection,
    registered,
)
from engine.optimize.settings import (
    DEFAULT_AUTO_BUDGET,
    AccuracyBudget,
    CalibrationSettings,
)

__all__ = ["DEFAULT_AUTO_BUDGET", "RECIPE_SECTIONS", "AccuracyBudget", "CalibrationSettings", "GraphSettings",
           "Knob", "LowRankSettings", "PruningSettings", "QuantizationSettings", "Recipe", "SectionForm", "option_key"]


def _passes_of(section: PassSection) -> list[type[OptimizationPass]]:
    return [implementation for implementation in registered().values() if implementation.section is section]


def _pass_section(section: PassSection) -> type[Section]:
    """The dataclass of one pass section: the selector, then each knob of its passes' configs, declared once."""
    passes = _passes_of(section)
    selector = Param(section.help, "choice", choices=("none", *(v for p in passes for v in p.choices)),
                     flag=section.flag)
    declared: dict[str, tuple[Field, type]] = {}
    for implementation in passes:
        for spec in knob_fields(implementation.config_type):
            first, owner = declared.setdefault(spec.name, (spec, implementation))
            if spec.name == section.selector or (first.metadata[KNOB], first.default) != (spec.metadata[KNOB],
                                                                                       spec.default):
                raise TypeError(f"knob '{section.name}.{spec.name}' of {implementation.__name__} clashes with "
                                f"{owner.__name__}'s or with the selector: declare it once and share it")
    specs = [(section.selector, str, field(default="none", metadata={KNOB: selector}))]
    specs += [(name, Any, _json_field(spec)) for name, (spec, _) in declared.items()]
    class_name = "".join(word.title() for word in section.name.split("_")) + "Settings"
    return make_dataclass(class_name, specs, bases=(Section,), namespace={
        "section": section.name, "title": section.title, "selector": section.selector, "__doc__": section.help,
        "__module__": __name__})


def _json_field(spec: Field) -> Any:
    """A config is frozen and holds names as a tuple; its section holds the JSON list."""
    default = spec.default
    if isinstance(default, tuple):
        return field(default_factory=lambda: list(default), metadata=spec.metadata)
    return field(default=default, metadata=spec.metadata)


PruningSettings = _pass_section(PRUNING)
LowRankSettings = _pass_section(LOW_RANK)
GraphSettings = _pass_section(GRAPH)
QuantizationSettings = _pass_section(QUANTIZATION)
_SECTIONS: dict[str, type[Section]] = {
    "pruning": PruningSettings,
    "low_rank": LowRankSettings,
    "graph": GraphSettings,
    "quantization": QuantizationSettings,
    "calibration": CalibrationSettings,
    "budget": AccuracyBudget,
}


@dataclass
class Recipe:
    pruning: PruningSettings = field(default_factory=PruningSettings)
    low_rank: LowRankSettings = field(default_factory=LowRankSettings)
    graph: GraphSettings = field(default_factory=GraphSettings)
    quantization: QuantizationSettings = field(default_factory=QuantizationSettings)
    calibration: CalibrationSettings = field(default_factory=CalibrationSettings)
    budget: AccuracyBudget = field(default_factory=AccuracyBudget)
    fidelity_samples: int = integer(32, 1, 100_000, "inputs the optimized model is compared with the original on")
    seed: int = integer(0, 0, 2**32 - 1, "seed of the synthetic calibration and fidelity inputs", flag="--recipe-seed")

    def __post_init__(self) -> None:
        for name, kind in _SECTIONS.items():
            if not isinstance(getattr(self, name), kind):
                raise RecipeError(f"recipe section '{name}' must be a {kind.__name__}")
        for spec in knob_fields(self):
            spec.metadata[KNOB].check(spec.name, getattr(self, spec.name))

    @property
    def effective_budget(self) -> AccuracyBudget:
        """The budget; auto quantization without one uses cosine ≥ 0.99 (and says so)."""
        if self.quantization.method == "auto" and not self.budget.is_set:
            return DEFAULT_AUTO_BUDGET
        return self.budget

    @property
    def quantizes(self) -> bool:
        return self.quantization.method != "none"

    def config_for(self, implementation: OptimizationPass | type[OptimizationPass], runner: DeviceRunner):
        """The config a pass runs with: its knobs from its section, the values it names from the recipe and device."""
        section = getattr(self, implementation.section.name) if implementation.section else None
        values = {}
        for spec in fields(implementation.config_type):
            if KNOB in spec.metadata:
                values[spec.name] = _frozen(getattr(section, spec.name))
            elif FROM_RECIPE in spec.metadata:
                values[spec.name] = _frozen(self._lookup(spec.metadata[FROM_RECIPE]))
            elif FROM_DEVICE in spec.metadata:
                values[spec.name] = getattr(runner, spec.metadata[FROM_DEVICE])
        return implementation.config_type(**values)

    def _lookup(self, dotted: str) -> Any:
        value = self
        for part in dotted.split("."):
            value = getattr(value, part)
        return value

    def to_dict(self) -> dict:
        return {
            **{name: getattr(self, name).to_dict() for name in _SECTIONS},
            **{spec.name: getattr(self, spec.name) for spec in knob_fields(self)},
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
        own = {spec.name: spec.default for spec in knob_fields(cls)}
        allowed = {*_SECTIONS, *own}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise RecipeError(f"recipe has unknown field(s) {unknown}; allowed: {sorted(allowed)}")
        sections = {name: kind.from_dict(data.get(name)) for name, kind in _SECTIONS.items()}
        return cls(**sections, **{name: data.get(name, default) for name, default in own.items()})

    @classmethod
    def from_json(cls, text: str) -> Recipe:
        try:
            data = bounded_json.loads(text)
        except bounded_json.BoundedJsonError as error:
            raise RecipeError(f"the recipe is {error}") from error
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        """The recipe in a JSON file, read within core.bounded_json's limits (size, nesting, integer length)."""
        try:
            data = bounded_json.read_json_file(path)
        except OSError as error:
            raise RecipeError(f"{path}: cannot read the recipe ({error.strerror or error})") from error
        except bounded_json.BoundedJsonError as error:
            raise RecipeError(f"{path}: the recipe is {error}") from error
        try:
            return cls.from_dict(data)
        except RecipeError as error:
            raise RecipeError(f"{path}: {error}") from error

    def save(self, path: str | Path) -> None:
        """Temp file beside the target, then rename: a failure never leaves a half-written recipe."""
        write_text_atomically(path, self.to_json() + "\n")


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def option_key(implementation: OptimizationPass | type[OptimizationPass]) -> str:
    """How the plan names a pass the user can pick: its section, or section.choice where the section has several."""
    section = implementation.section
    if len(_passes_of(section)) == 1:
        return section.name
    return f"{section.name}.{next(iter(implementation.choices))}"


@dataclass(frozen=True)
class Knob:
    """One knob as the command line and the GUI offer it."""

    section: str  # "" for the recipe's own knobs
    name: str
    param: Param
    default: Any
    read_when: tuple[str, ...] = ()  # the section selector's values whose pass reads it; empty: always read


@dataclass(frozen=True)
class SectionForm:
    """One recipe section as the command line and the GUI offer it."""

    name: str  # "" for the recipe's own knobs
    title: str
    knobs: tuple[Knob, ...]
    selector: Knob | None = None
    labels: dict[str, str] = field(default_factory=dict)  # selector value → what the GUI calls it
    options: dict[str, str] = field(default_factory=dict)  # selector value → its option_key
    aliases: dict[str, str] = field(default_factory=dict)  # command-line shorthand → selector value

    @property
    def all_knobs(self) -> tuple[Knob, ...]:
        """The selector first, where the section has one, then the knobs."""
        return (self.selector, *self.knobs) if self.selector else self.knobs


def _describe() -> tuple[SectionForm, ...]:
    forms = []
    for name, kind in _SECTIONS.items():
        passes = [p for p in registered().values() if p.section is not None and p.section.name == name]
        knobs = []
        for spec in knob_fields(kind):
            readers = [p for p in passes if spec.name in {s.name for s in knob_fields(p.config_type)}]
            default = spec.default_factory() if spec.default is MISSING else spec.default
            knobs.append(Knob(name, spec.name, spec.metadata[KNOB], default,
                              tuple(value for p in readers for value in p.choices)))
        if not passes:
            forms.append(SectionForm(name, kind.title, tuple(knobs)))
            continue
        selector = next(knob for knob in knobs if knob.name == kind.selector)
        forms.append(SectionForm(
            name, kind.title, tuple(knob for knob in knobs if knob is not selector), selector,
            {"none": "None", **{value: label for p in passes for value, label in p.choices.items()}},
            {value: option_key(p) for p in passes for value in p.choices}, dict(passes[0].section.aliases)))
    own = tuple(Knob("", spec.name, spec.metadata[KNOB], spec.default) for spec in knob_fields(Recipe))
    return (*forms, SectionForm("", "Fidelity check", own))


def _check_declarations() -> None:
    """Fail when the studio starts, not halfway through a run, when a pass is declared wrong."""
    default = Recipe()
    for implementation in registered().values():
        if implementation.section is None and knob_fields(implementation.config_type):
            raise TypeError(f"{implementation.__name__} declares knobs but names no recipe section to hold them")
        if implementation.section is not None and implementation.section.name not in _SECTIONS:
            raise TypeError(f"{implementation.__name__} names recipe section '{implementation.section.name}', "
                            "which Recipe has no field for")
        for spec in fields(implementation.config_type):
            if FROM_RECIPE in spec.metadata:
                try:
                    default._lookup(spec.metadata[FROM_RECIPE])
                except AttributeError as error:
                    raise TypeError(f"{implementation.__name__}.{spec.name} reads "
                                    f"'{spec.metadata[FROM_RECIPE]}', which the recipe does not have") from error


_check_declarations()
RECIPE_SECTIONS = _describe()
