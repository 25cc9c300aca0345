"""The recipe sections no single pass owns: the data calibration runs on, and the accuracy the result must keep.

Several passes read them (static INT8, auto, Taylor importance) and so does the optimizer itself (fidelity is
graded against the budget), so they are declared here rather than on a pass's config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

from engine.optimize.params import Section, integer, number, path


@dataclass
class CalibrationSettings(Section):
    """Data for static INT8 calibration, Taylor importance and auto-mode sensitivity."""

    section: ClassVar[str] = "calibration"
    title: ClassVar[str] = "Calibration data"
    source: str | None = path("calibration data: an .npz, or a folder of .npy/.npz files; "
                              "empty: seeded synthetic inputs from the input settings", flag="--calibration")
    samples: int = integer(32, 1, 100_000, "how many calibration samples are used")


@dataclass
class AccuracyBudget(Section):
    """Fidelity the optimized model must keep against the original; None means no limit."""

    section: ClassVar[str] = "budget"
    title: ClassVar[str] = "Accuracy budget"
    min_cosine: float | None = number(None, -1.0, 1.0, "minimum cosine similarity to the original", optional=True,
                                      flag="--budget-cosine", example=0.99)
    max_top1_disagreement: float | None = number(None, 0.0, 1.0, "maximum share of inputs whose top-1 class changes",
                                                 optional=True, flag="--budget-top1-disagreement", example=0.01)
    max_relative_error: float | None = number(None, 0.0, None, "maximum relative L2 error", optional=True,
                                              flag="--budget-relative-error", example=0.05)

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


DEFAULT_AUTO_BUDGET = AccuracyBudget(min_cosine=0.99)
