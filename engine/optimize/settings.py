"""The recipe sections no single pass owns: the data calibration runs on, and the accuracy the result must keep.

Several passes read them (static INT8, auto, Taylor importance) and so does the optimizer itself (fidelity is
graded against the budget), so they are declared here rather than on a pass's config.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

from engine.errors import RecipeError
from engine.model.image_samples import CHANNEL_ORDERS, ImageNormalization
from engine.model.sample_data import SampleOptions
from engine.optimize.params import Section, choice, integer, names, number, path


@dataclass
class CalibrationSettings(Section):
    """Data for static INT8 calibration, Taylor importance and auto-mode sensitivity."""

    section: ClassVar[str] = "calibration"
    title: ClassVar[str] = "Calibration data"
    source: str | None = path("calibration data: an .npz, a folder of .npy/.npz files, a folder of images "
                              "(.png/.jpg/.bmp/.webp) or a .txt file with one text a line (needs a tokenizer); "
                              "empty: seeded synthetic inputs from the input settings", flag="--calibration")
    samples: int = integer(32, 1, 100_000, "how many calibration samples are used")
    tokenizer: str | None = path("tokenizer for a .txt source: a tokenizer.json or a Hugging Face folder holding one",
                                 flag="--tokenizer")
    image_divisor: float = number(255.0, 0.0, None, "images: pixels (0-255) are divided by this before mean and "
                                  "std; 255 gives 0-1, 1 keeps 0-255", low_open=True, flag="--image-divisor")
    image_mean: list[str] | None = names("images: mean subtracted after the divisor, one value or one per channel "
                                         "(e.g. 0.485,0.456,0.406); empty: 0", optional=True, flag="--image-mean",
                                         placeholder="0, or one value per channel: 0.485, 0.456, 0.406", item="X")
    image_std: list[str] | None = names("images: std divided by after the mean, one value or one per channel "
                                        "(e.g. 0.229,0.224,0.225); empty: 1", optional=True, flag="--image-std",
                                        placeholder="1, or one value per channel: 0.229, 0.224, 0.225", item="X")
    channel_order: str = choice("rgb", CHANNEL_ORDERS, "images: order of the color channels the model takes",
                                flag="--channel-order")

    def __post_init__(self) -> None:
        for name in ("image_mean", "image_std"):  # a JSON recipe may hold numbers; the CLI and GUI give text
            values = getattr(self, name)
            if isinstance(values, list):
                setattr(self, name, [str(v) if isinstance(v, (int, float)) else v for v in values])
        super().__post_init__()
        self._numbers("image_mean")
        std = self._numbers("image_std")
        if std and 0.0 in std:
            raise RecipeError("recipe field 'calibration.image_std' must not hold 0")
        if self.source is not None and Path(self.source).suffix.lower() == ".txt" and self.tokenizer is None:
            raise RecipeError("calibration data from a .txt file needs a tokenizer (recipe field 'calibration.tokenizer')")

    def sample_options(self) -> SampleOptions:
        """How a folder of images or a text file given as the source becomes calibration feeds."""
        return SampleOptions(
            tokenizer=None if self.tokenizer is None else Path(self.tokenizer),
            normalization=ImageNormalization(self.image_divisor, self._numbers("image_mean") or (0.0,),
                                             self._numbers("image_std") or (1.0,), self.channel_order),
        )

    def _numbers(self, name: str) -> tuple[float, ...]:
        values = getattr(self, name) or []
        try:
            numbers = tuple(float(value) for value in values)
        except ValueError:
            raise RecipeError(f"recipe field 'calibration.{name}' must hold numbers, got {values!r}") from None
        if not all(math.isfinite(number) for number in numbers) or len(numbers) > 3:
            raise RecipeError(f"recipe field 'calibration.{name}' must hold 1 to 3 finite numbers, got {values!r}")
        return numbers


@dataclass
class AccuracyBudget(Section):
    """Fidelity the optimized model must keep against the original; None means no limit on that figure.

    Every optimization is graded against a budget. When the recipe sets none, the default applies
    (`AccuracyBudget.default()`: cosine ≥ 0.99 on every output, and at most 1% of inputs changing their
    top-1 class on every output classified as logits), and the result says the default was applied.
    The top-1 limit applies to outputs that look like class scores (engine.optimize.output_metrics.output_kind);
    the default one is silently left out for a model with none, one the user sets is reported as not judged.
    An output whose figures mean nothing on the inputs used (near-zero, near-constant, NaN/inf) cannot be
    judged: the result is then not accepted, whatever the limits.
    """

    section: ClassVar[str] = "budget"
    title: ClassVar[str] = "Accuracy budget"
    min_cosine: float | None = number(None, -1.0, 1.0, "minimum cosine similarity to the original, per output "
                                      "(default budget: 0.99)", optional=True, flag="--budget-cosine", example=0.99)
    max_top1_disagreement: float | None = number(None, 0.0, 1.0, "maximum share of inputs whose top-1 class changes, "
                                                 "per classifier output (default budget: 0.01)", optional=True,
                                                 flag="--budget-top1-disagreement", example=0.01)
    max_relative_error: float | None = number(None, 0.0, None, "maximum relative L2 error", optional=True,
                                              flag="--budget-relative-error", example=0.05)

    @classmethod
    def default(cls) -> AccuracyBudget:
        """The budget every optimization is graded against when the recipe sets none."""
        return cls(min_cosine=DEFAULT_MIN_COSINE, max_top1_disagreement=DEFAULT_MAX_TOP1_DISAGREEMENT)

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


DEFAULT_MIN_COSINE = 0.99
DEFAULT_MAX_TOP1_DISAGREEMENT = 0.01
DEFAULT_AUTO_BUDGET = AccuracyBudget.default()
