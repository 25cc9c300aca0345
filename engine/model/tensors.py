"""Descriptions of model inputs and outputs."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A dimension is a fixed size (int), a symbolic name such as "batch" (str), or
# None where the model leaves it open without a name.
Dim = int | str | None

# A symbolic dim longer than this, or not a plain name, is a formula (exporters write output sizes such as
# "(floor(floor(height/2 - 1/2)/2) + 1)*..."): the brief form shows it as expr₁, expr₂, … instead.
MAX_BRIEF_DIM = 24
PLAIN_DIM_NAME = re.compile(r"[\w.:\-]+")
SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def is_formula(dim: Dim) -> bool:
    return isinstance(dim, str) and (len(dim) > MAX_BRIEF_DIM or not PLAIN_DIM_NAME.fullmatch(dim))


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # a numpy dtype name: "float32", "int64", "bool", ...
    shape: tuple[Dim, ...] | None  # None: the rank itself is unknown
    # Sizes the model file suggests for open dims: (axis, size, where it says so), e.g. (2, 320, "imgsz [320, 320]").
    size_hints: tuple[tuple[int, int, str], ...] = ()

    @property
    def symbolic_dims(self) -> tuple[str, ...]:
        return tuple(d for d in (self.shape or ()) if isinstance(d, str))

    def shape_text(self, brief: bool = False) -> str:
        """'batch×3×224×224'; brief: formulas shortened to expr₁, expr₂, … (`formulas()` has their full text)."""
        if self.shape is None:
            return "?"
        tokens = {v: k for k, v in self.formulas().items()} if brief else {}
        return "×".join("?" if d is None else tokens.get(d, str(d)) for d in self.shape) or "scalar"

    def formulas(self) -> dict[str, str]:
        """The brief form's tokens and the formulas they stand for, in order: {'expr₁': '(floor(height/2)…'}."""
        found = dict.fromkeys(d for d in self.shape or () if is_formula(d))
        return {f"expr{str(n).translate(SUBSCRIPTS)}": formula for n, formula in enumerate(found, 1)}

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": None if self.shape is None else list(self.shape)}
