"""Where each dynamic dim's size came from, as `bench` and `inspect` print it."""

from __future__ import annotations

from collections.abc import Mapping

from engine.model.inputs import DimChoice

DIM_ORIGIN_LABELS = (("given", "dims given"), ("data", "dims data"), ("model metadata", "metadata"),
                     ("default", "defaults"))


def dim_choice_lines(choices: Mapping[str, DimChoice]) -> list[str]:
    """Where each dynamic dim's size came from, by origin; guessed sizes on a line of their own."""
    lines = []
    for origin, label in DIM_ORIGIN_LABELS:
        chosen = {dim: c for dim, c in choices.items() if c.origin == origin and not c.guessed}
        if chosen:
            lines.append(f"{label:<11} " + ", ".join(f"{dim}={c.size} ({c.reason})" for dim, c in chosen.items()))
    guessed = {dim: c for dim, c in choices.items() if c.guessed}
    if guessed:
        lines.append("guessed     " + ", ".join(f"{dim}={c.size} ({c.reason})" for dim, c in guessed.items())
                     + ": check these")
    if any(c.origin != "given" for c in choices.values()):
        lines.append("            (set a dim with --dim NAME=N, or a whole input with --shape NAME=DIMS)")
    return lines
