import json

import numpy as np
import onnxruntime as ort
import pytest

from engine.device import discovery as devices
from engine.optimize.recipe import Recipe
from studio.cli.main import build_parser, main
from studio.cli.optimize import recipe_from_args
from studio.usecases.runs import open_store
from tests.conftest import embedding_onnx, linear_onnx


def scaled_onnx(source, target, factor: float):
    """`source` with its output multiplied by `factor` (a Mul on the only output)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    output = graph.output[0].name
    for node in graph.node:
        node.output[:] = [f"{name}_raw" if name == output else name for name in node.output]
    graph.initializer.append(numpy_helper.from_array(np.array(factor, dtype=np.float32), "factor"))
    graph.node.append(helper.make_node("Mul", [f"{output}_raw", "factor"], [output]))
    onnx.save(model, str(target))
    return target


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
    code = main(["optimize", str(model), "--quantize", "dynamic", "-o", str(output), "--compare-seconds", "0.2",
                 "--budget-cosine", "0.9", "--json"])
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
    assert out.startswith("plan:") and "steps run:" in out
    assert "worst cosine 1.00000 (on 32 synthetic inputs)" in out and "accepted: written" in out
    assert "default budget (the recipe sets none) cosine ≥ 0.99, top-1 disagreement ≤ 0.01: met" in out


def test_a_missed_budget_writes_nothing_and_exits_3(tmp_path, capsys):
    # setup
    model = linear_onnx(tmp_path / "m.onnx", features=64)
    output = tmp_path / "never.onnx"

    # execute
    code = main(["optimize", str(model), "--quantize", "dynamic", "--budget-relative-error", "0.0000001",
                 "-o", str(output), "--compare-seconds", "0", "--db", f"sqlite:///{tmp_path / 'runs.db'}"])

    # assert: a distinct status, "below budget" with the violation, nothing written and nothing saved
    captured = capsys.readouterr()
    assert code == 3 and not output.exists()
    assert "rejected, below budget ('y': relative error" in captured.err
    assert "REJECTED (below budget): nothing written to the output path and nothing saved" in captured.out
    assert "saved as artifact" not in captured.out
    with open_store(f"sqlite:///{tmp_path / 'runs.db'}") as db:
        assert db.catalog.artifact(1) is None


def test_without_a_budget_the_default_one_rejects_a_harmful_result(tmp_path, capsys):
    # setup: INT8 of a 3-class linear model changes the top class of some of the 32 inputs (> 1%)
    model = linear_onnx(tmp_path / "m.onnx", features=64)
    output = tmp_path / "never.onnx"

    # execute
    code = main(["optimize", str(model), "--quantize", "dynamic", "-o", str(output), "--compare-seconds", "0",
                 "--no-save", "--json"])

    # assert
    document = json.loads(capsys.readouterr().out)
    budget = document["fidelity"]["budget"]
    assert code == 3 and not output.exists() and document["status"] == "budget_not_met"
    assert budget["source"] == "default" and budget["verdict"] == "below budget"
    assert "top-1 disagreement" in budget["violations"][0]
    assert document["fidelity"]["data"]["synthetic"] and document["fidelity"]["summary"].endswith(
        "(on 32 synthetic inputs)")


def test_outputs_that_are_zero_on_the_inputs_are_not_measurable_and_not_accepted(tmp_path, capsys):
    # setup: y = 1e-9 * x: on any input the outputs are ~0, so a cosine would mean nothing
    model = linear_onnx(tmp_path / "m.onnx", features=64)
    tiny = tmp_path / "tiny.onnx"
    scaled_onnx(model, tiny, 1e-9)

    # execute
    code = main(["optimize", str(tiny), "--graph-level", "basic", "-o", str(tmp_path / "o.onnx"),
                 "--compare-seconds", "0", "--no-save"])

    # assert
    captured = capsys.readouterr()
    assert code == 3 and not (tmp_path / "o.onnx").exists()
    assert "not measurable on these inputs: the original model's outputs are ~0" in captured.out
    assert "NOT JUDGED" in captured.out and "rejected, not judged" in captured.err
    assert "1.00000" not in captured.out  # no figure that looks meaningful


def test_help_documents_the_rejected_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["optimize", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "3 rejected (below budget or not judged)" in out and "cosine >= 0.99" in out


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
