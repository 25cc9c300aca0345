import json

import onnxruntime as ort
import pytest

from engine.device import discovery as devices
from engine.optimize.recipe import Recipe
from studio.cli.main import build_parser, main
from studio.cli.optimize import recipe_from_args
from tests.conftest import embedding_onnx, linear_onnx


@pytest.fixture(autouse=True)
def cpu_only_machine(monkeypatch):
    monkeypatch.setattr(devices, "nvml_gpus", lambda: ([], None, "no NVIDIA driver"))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOGLM_STUDIO_CACHE", str(tmp_path / "cache"))


def test_dynamic_int8_writes_a_graded_model_and_an_artifact(tmp_path, capsys):
    # setup
    model = linear_onnx(tmp_path / "m.onnx", features=64)
    output = tmp_path / "m_int8.onnx"
    # execute
    code = main(["optimize", str(model), "--quantize", "dynamic", "-o", str(output), "--compare-seconds", "0.2", "--json"])
    # assert
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and output.exists()
    assert document["status"] == "completed" and document["artifact_id"] == 1
    assert document["recipe"]["quantization"]["method"] == "dynamic_int8"
    assert document["fidelity"]["outputs"][0]["cosine"] > 0.9
    assert document["before_after"]["speedup"] > 0
    ort.InferenceSession(str(output))  # loads in plain ONNX Runtime


def test_text_report_shows_the_plan_first(tmp_path, capsys):
    model = embedding_onnx(tmp_path / "e.onnx")
    assert main(["optimize", str(model), "--graph-level", "basic", "-o", str(tmp_path / "o.onnx"),
                 "--compare-seconds", "0", "--no-save"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("plan:") and "steps run:" in out and "fidelity on 32 seeded inputs" in out


def test_a_missed_budget_writes_nothing_and_exits_2(tmp_path, capsys):
    model = linear_onnx(tmp_path / "m.onnx", features=64)
    output = tmp_path / "never.onnx"
    code = main(["optimize", str(model), "--quantize", "dynamic", "--budget-relative-error", "0.0000001",
                 "-o", str(output), "--compare-seconds", "0"])
    assert code == 2 and not output.exists()
    assert "misses the accuracy budget" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "message"), [
    (["--prune", "structured"], "module"),
    (["--prune-ratio", "1.5", "--prune", "unstructured"], "ratio"),
    (["--recipe", "{bad_recipe}"], "unknown field"),
])
def test_bad_recipes_are_one_line_errors(tmp_path, capsys, extra, message):
    bad_recipe = tmp_path / "bad.json"
    bad_recipe.write_text('{"quantisation": {}}')
    model = linear_onnx(tmp_path / "m.onnx")
    argv = ["optimize", str(model), "-o", str(tmp_path / "o.onnx"), *[a.format(bad_recipe=bad_recipe) for a in extra]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_every_recipe_knob_is_a_flag_laid_over_the_recipe_file(tmp_path):
    # setup
    saved = tmp_path / "saved.json"
    Recipe.from_dict({"quantization": {"method": "static_int8", "percentile": 99.9, "reduce_range": True}}).save(saved)
    argv = ["optimize", "m.onnx", "-o", "o.onnx", "--recipe", str(saved), "--quantize", "dynamic",
            "--quantization-op-types-to-quantize", "MatMul,Gather", "--no-quantization-reduce-range",
            "--low-rank", "0.3", "--budget-cosine", "0.98"]

    # execute
    recipe = recipe_from_args(build_parser().parse_args(argv))

    # assert
    assert recipe.quantization.method == "dynamic_int8" and recipe.quantization.percentile == 99.9
    assert recipe.quantization.op_types_to_quantize == ["MatMul", "Gather"] and not recipe.quantization.reduce_range
    assert recipe.low_rank.method == "rank_ratio" and recipe.low_rank.rank_ratio == 0.3  # --low-rank R picks the method
    assert recipe.budget.min_cosine == 0.98
