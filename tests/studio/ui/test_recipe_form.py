"""One knob, one place: a pass declared in a test reaches the recipe, the plan, the command line and the GUI form."""

import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import REPO, SAMPLE_CNN

TOY_PASS = textwrap.dedent('''
    import json
    from dataclasses import dataclass

    from engine.optimize.params import integer
    from engine.optimize.passes import QUANTIZATION, OnnxArtifact, OptimizationPass, Stage

    @dataclass(frozen=True)
    class ToyInt4Config:
        toy_bits: int = integer(4, 2, 8, "bits per weight")

    class ToyInt4Pass(OptimizationPass):  # declared here, and nowhere else
        name = "toy_int4"
        title = "toy INT4 quantization"
        stage = Stage.QUANTIZE
        section = QUANTIZATION
        choices = {"toy_int4": "Toy INT4"}
        config_type = ToyInt4Config
        accepts = "onnx"

        def run(self, artifact: OnnxArtifact, config, context):
            raise NotImplementedError

    from PySide6.QtWidgets import QApplication

    from engine.device.discovery import DeviceRunner
    from engine.errors import RecipeError
    from engine.model.opening import load_model
    from engine.optimize.plan import plan_optimization
    from engine.optimize.recipe import Recipe
    from studio.cli.main import build_parser
    from studio.cli.optimize import recipe_from_args
    from studio.ui.pages.recipe_form import RecipeForm

    found = {}
    try:
        Recipe.from_dict({"quantization": {"toy_bits": 9}})
    except RecipeError as error:
        found["error"] = str(error)
    recipe = Recipe.from_dict({"quantization": {"method": "toy_int4", "toy_bits": 3}})
    plan = plan_optimization(load_model(SAMPLE), recipe, DeviceRunner("onnxruntime", "CPUExecutionProvider"))
    found["plan"] = [(step.pass_name, step.to_dict()["config"]) for step in plan.steps]
    args = build_parser().parse_args(["optimize", SAMPLE, "-o", "out.onnx", "--quantize", "toy_int4",
                                      "--quantization-toy-bits", "5"])
    found["cli"] = recipe_from_args(args).to_dict()["quantization"]
    app = QApplication([])
    form = RecipeForm()
    field = form.editor("quantization", "toy_bits")
    found["gui_range"] = [field.minimum(), field.maximum(), field.value()]
    found["gui_enabled_while_off"] = field.isEnabled()
    selector = form.selector("quantization")
    selector.setCurrentIndex(selector.findData("toy_int4"))
    found["gui_enabled_for_toy"] = field.isEnabled()
    found["gui_label"] = selector.currentText()
    field.setValue(7)
    found["gui_recipe"] = form.recipe().quantization.toy_bits
    print(json.dumps(found))
''')


def test_a_knob_declared_on_a_pass_config_reaches_recipe_plan_cli_and_gui(tmp_path):
    # setup
    script = tmp_path / "toy_pass.py"
    script.write_text(f"SAMPLE = {str(SAMPLE_CNN)!r}\n{TOY_PASS}")
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)}

    # execute
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                            env=environment, timeout=120)

    # assert
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert "quantization.toy_bits" in found["error"] and "2 ≤ toy_bits ≤ 8" in found["error"]
    assert found["plan"] == [["toy_int4", {"toy_bits": 3}]]
    assert found["cli"]["method"] == "toy_int4" and found["cli"]["toy_bits"] == 5
    assert found["gui_range"] == [2, 8, 4]
    assert found["gui_enabled_while_off"] is False  # quantization "none" reads no knob
    assert found["gui_enabled_for_toy"] and found["gui_label"] == "Toy INT4" and found["gui_recipe"] == 7
