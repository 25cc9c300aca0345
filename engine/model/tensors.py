"""Descriptions of model inputs and outputs."""

from __future__ import annotations

from dataclasses import dataclass

# A dimension is a fixed size (int), a symbolic name such as "batch" (str), or
# None where the model says nothing at all about it.
Dim = int | str | None


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # a numpy dtype name: "float32", "int64", "bool", ...
    shape: tuple[Dim, ...] | None  # None: the rank itself is unknown

    @property
    def symbolic_dims(self) -> tuple[str, ...]:
        return tuple(d for d in (self.shape or ()) if isinstance(d, str))

    def shape_text(self) -> str:
        if self.shape is None:
            return "?"
        return "×".join("?" if d is None else str(d) for d in self.shape) or "scalar"

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": None if self.shape is None else list(self.shape)}
