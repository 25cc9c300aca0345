"""Knobs that describe themselves: a recipe value is declared once, as a dataclass field that carries its meaning,
its allowed values and its default.

A pass declares its knobs on its config dataclass; a section no single pass owns (calibration data, the accuracy
budget) declares them on its own dataclass. The recipe's sections and their validation, the `optimize` command's
flags and the Optimize page's form are all derived from these fields, so a new knob is one field in one place.
Plain Python and no Qt: the engine stays headless.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import Field, asdict, dataclass, field, fields
from typing import Any, ClassVar

from engine.errors import RecipeError

KNOB = "knob"  # field metadata: the Param of a value the user sets
FROM_RECIPE = "from_recipe"  # field metadata: a config value read from elsewhere in the recipe
FROM_DEVICE = "from_device"  # field metadata: a config value read from the device runner


@dataclass(frozen=True)
class Param:
    """What a knob means and allows; its name and default are those of the field that carries it."""

    help: str
    kind: str  # "choice", "boolean", "number", "integer", "names" or "path"
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the bound itself is excluded
    high_open: bool = False
    optional: bool = False  # None is allowed: no limit, synthetic data, or the library's default
    flag: str | None = None  # the command-line spelling where it is not --<section>-<name>
    example: float | None = None  # a typical value, offered when an optional number is switched on
    selects: str | None = None  # on the command line, giving this knob also picks this value of its section's selector
    placeholder: str = "none"  # what an empty text field shows
    item: str = "NAME"  # what one element of a "names" list is, on the command line: NAME, or X for numbers

    def check(self, name: str, value: Any) -> None:
        """Raise a one-line RecipeError naming the field and what it allows."""
        if value is None and self.optional:
            return
        if self.kind == "choice" and value not in self.choices:
            raise RecipeError(f"recipe field '{name}' = {value!r} is not allowed; choose one of {list(self.choices)}")
        if self.kind == "boolean" and not isinstance(value, bool):
            raise RecipeError(f"recipe field '{name}' must be true or false, got {value!r}")
        if self.kind in ("number", "integer"):
            short = name.split(".")[-1]
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not numeric or (self.kind == "integer" and not isinstance(value, int)) or not math.isfinite(value):
                raise RecipeError(f"recipe field '{name}' must be {self.range_text(short)}, got {value!r}")
            if not self.contains(value):
                raise RecipeError(f"recipe field '{name}' = {value!r} is out of range: allowed {self.range_text(short)}")
        if self.kind == "names" and not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)):
            raise RecipeError(f"recipe field '{name}' must be a list of non-empty names, got {value!r}")
        if self.kind == "path" and not (isinstance(value, str) and value.strip()):
            raise RecipeError(f"recipe field '{name}' must be a file or folder path, got {value!r}")

    def contains(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))

    def range_text(self, name: str) -> str:
        kind = "a whole number" if self.kind == "integer" else "a number"
        return f"{kind} {self.bounds_text(name)}".rstrip()

    def bounds_text(self, name: str) -> str:
        """E.g. '0 < ratio < 1'; just the name for an unbounded number."""
        spell = (lambda bound: f"{bound:d}") if self.kind == "integer" else (lambda bound: f"{bound:g}")
        left = "" if self.low is None else f"{spell(self.low)} {'<' if self.low_open else '≤'} "
        right = "" if self.high is None else f" {'<' if self.high_open else '≤'} {spell(self.high)}"
        return f"{left}{name}{right}"


def choice(default: str, options: Sequence[str], help: str, *, flag: str | None = None) -> Any:
    return _knob(default, Param(help, "choice", choices=tuple(options), flag=flag))


def boolean(default: bool, help: str, *, flag: str | None = None) -> Any:
    return _knob(default, Param(help, "boolean", flag=flag))


def number(default: float | None, low: float | None, high: float | None, help: str, *, low_open: bool = False,
           high_open: bool = False, optional: bool = False, flag: str | None = None, example: float | None = None,
           selects: str | None = None) -> Any:
    return _knob(default, Param(help, "number", low=low, high=high, low_open=low_open, high_open=high_open,
                                optional=optional, flag=flag, example=example, selects=selects))


def integer(default: int | None, low: int, high: int, help: str, *, optional: bool = False, flag: str | None = None,
            example: int | None = None) -> Any:
    return _knob(default, Param(help, "integer", low=low, high=high, optional=optional, flag=flag, example=example))


def names(help: str, *, optional: bool = False, flag: str | None = None,
          placeholder: str = "comma-separated names", item: str = "NAME") -> Any:
    """Node, module or op-type names (or other comma-separated values); a config holds them as a tuple, the
    recipe's JSON as a list."""
    return _knob(None if optional else (), Param(help, "names", optional=optional, flag=flag, placeholder=placeholder,
                                                         item=item))


def path(help: str, *, flag: str | None = None) -> Any:
    return _knob(None, Param(help, "path", optional=True, flag=flag))


def from_recipe(dotted: str) -> Any:
    """A config value read from elsewhere in the recipe, e.g. "calibration.samples" or "fidelity_samples"."""
    return field(kw_only=True, metadata={FROM_RECIPE: dotted})


def from_device(attribute: str) -> Any:
    """A config value read from the device runner, e.g. "provider": results made for one device differ on another."""
    return field(kw_only=True, metadata={FROM_DEVICE: attribute})


def knob_fields(owner) -> list[Field]:
    return [spec for spec in fields(owner) if KNOB in spec.metadata]


def _knob(default: Any, param: Param) -> Any:
    return field(default=default, metadata={KNOB: param})


class Section:
    """A recipe section: a dataclass of knobs, checked when built and read from JSON as one object."""

    section: ClassVar[str]  # its name in the recipe
    title: ClassVar[str]  # how the CLI and the GUI head it

    def __post_init__(self) -> None:
        for spec in knob_fields(self):
            spec.metadata[KNOB].check(f"{self.section}.{spec.name}", getattr(self, spec.name))

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
            raise RecipeError(f"recipe section '{cls.section}' has unknown field(s) {unknown}; allowed: {sorted(known)}")
        return cls(**data)
