"""Where each dim's size came from, as `bench` and `inspect` print it (issue 13)."""

from pathlib import Path

from engine.model.handle import ModelFormat, ModelHandle
from engine.model.inputs import DimChoice
from engine.model.tensors import TensorSpec
from studio.present.dims import dim_choice_lines
from studio.present.models import model_text

FORMULA = "(floor(floor(floor(height/2 - 1/2)/2)/2) + 1)*(floor(floor(floor(width/2 - 1/2)/2)/2) + 1)" * 3


def test_each_origin_has_its_line_and_guesses_are_called_so():
    lines = dim_choice_lines({"batch": DimChoice(1, "default", "batch", False),
                              "height": DimChoice(320, "model metadata", "imgsz [320, 320]", False),
                              "x[1]": DimChoice(32, "default", "role unknown", True)})
    assert lines[0] == "metadata    height=320 (imgsz [320, 320])"
    assert lines[1] == "defaults    batch=1 (batch)"
    assert lines[2] == "guessed     x[1]=32 (role unknown): check these"
    assert "--dim NAME=N" in lines[3]


def test_inspect_shows_formulas_briefly_and_the_dims_a_run_would_use():
    handle = ModelHandle(path=Path("detector.onnx"), format=ModelFormat.ONNX, sha256="0" * 64,
                         size_bytes=1, parameter_count=0, op_histogram={},
                         inputs=(TensorSpec("images", "float32", ("batch", 3, "height", "width"),
                                            size_hints=((2, 320, "imgsz [320, 320]"), (3, 320, "imgsz [320, 320]"))),),
                         outputs=(TensorSpec("output0", "float32", ("batch", 22, FORMULA)),))
    text = model_text(handle)
    assert "batch×22×expr₁" in text and max(len(line) for line in text.splitlines()) <= 120
    assert "metadata    height=320 (imgsz [320, 320]), width=320 (imgsz [320, 320])" in text
    assert "defaults    batch=1 (batch)" in text
