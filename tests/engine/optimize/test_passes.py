"""Passes register by subclassing, run in the order of their stages, and cost nothing heavy to import."""

import json
import subprocess
import sys

import pytest

from engine.optimize.passes import OptimizationPass, registered
from tests.conftest import REPO

HEAVY = ("torch", "torch_pruning", "onnxruntime.quantization", "onnxconverter_common")


def test_importing_the_passes_and_the_recipe_loads_no_heavy_library():
    # setup
    code = ("import json, sys, engine.optimize.passes; before = 'engine.optimize.recipe' in sys.modules; "
            "import engine.optimize.recipe; "
            f"print(json.dumps([before, sorted(m for m in {HEAVY!r} if m in sys.modules)]))")

    # execute
    output = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)

    # assert: the passes never import the recipe, which is built from them
    assert json.loads(output.stdout) == [False, []]


def test_passes_run_in_the_order_of_their_stages():
    # execute
    passes = registered()

    # assert
    stages = [implementation.stage for implementation in passes.values()]
    assert stages == sorted(stages)
    names = list(passes)
    assert names.index("structured_pruning") < names.index("low_rank") < names.index("export_onnx") \
        < names.index("prepare_onnx") < names.index("graph_optimization") < names.index("static_int8")


def test_a_second_pass_with_a_taken_name_is_refused():
    # execute / assert
    with pytest.raises(TypeError, match="two optimization passes are named 'fp16'"):
        class AnotherFp16(OptimizationPass):
            name = "fp16"
    assert registered()["fp16"].__name__ == "Fp16Pass"
