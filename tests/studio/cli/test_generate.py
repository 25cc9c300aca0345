import json
from pathlib import Path

import pytest

from studio.cli.main import main


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    from engine.generative.random_models import build_random_causal_lm

    return build_random_causal_lm(tmp_path_factory.mktemp("llama") / "model", preset="tiny", family="llama")


def _generate(capsys, tiny_llama, *extra) -> dict:
    assert main(["generate-bench", str(tiny_llama), "--prompt-len", "12", "--new-tokens", "5", "--requests", "2",
                 "--telemetry-hz", "20", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_generation_run_is_saved_with_a_sample_per_step(capsys, tiny_llama):
    # execute
    document = _generate(capsys, tiny_llama, "--tag", "llm")
    shown = json.loads((main(["runs", "show", str(document["run_id"]), "--json"]), capsys.readouterr().out)[1])
    # assert
    assert document["mode"] == "generation" and document["status"] == "completed"
    assert document["generated_tokens"] == 2 * 5
    assert document["summary"]["ttft_ms"]["count"] == 2
    assert shown["latency_samples"] == 2 * 5  # one prefill and four decode steps per request
    assert shown["summary"]["latency_ms"]["count"] == 10 and shown["tags"] == ["llm"]
    assert shown["settings"]["mode"] == "generation"
    assert document["telemetry"]["items"] == 10


def test_prefix_reuse_and_serving_modes(capsys, tiny_llama):
    prefix = _generate(capsys, tiny_llama, "--shared-prefix", "24")
    assert prefix["mode"] == "prefix_reuse" and all(prefix["outputs_identical"])
    serving = _generate(capsys, tiny_llama, "--rate", "50", "--duration", "0.2", "--no-save")
    assert serving["mode"] == "serving" and serving["run_id"] is None and serving["requests"] >= 1


@pytest.mark.parametrize(("argv", "message"), [
    (["{missing}"], "no such folder"),
    (["{model}", "--shared-prefix", "8", "--rate", "3"], "not both"),
    (["{model}", "--new-tokens", "0"], "new tokens"),
])
def test_bad_requests_are_one_line_errors(tmp_path, capsys, tiny_llama, argv, message):
    argv = [a.format(missing=tmp_path / "absent", model=tiny_llama) for a in argv]
    assert main(["generate-bench", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert main(["runs", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 0  # bad input never leaves a run behind


def test_weight_only_quantization_is_graded_by_perplexity(capsys, tiny_llama):
    document = _generate(capsys, tiny_llama, "--weight-quantization", "int8-dynamic", "--no-save")
    quantized = document["weight_quantization"]
    assert quantized["scheme"] == "int8-dynamic" and quantized["linear_layers_quantized"] > 0
    assert quantized["weight_bytes_after"] < quantized["weight_bytes_before"]
    assert quantized["perplexity_before"]["perplexity"] > 0 and quantized["perplexity_after"]["perplexity"] > 0


def test_a_perplexity_budget_refuses_a_worse_model(capsys, tiny_llama):
    assert main(["generate-bench", str(tiny_llama), "--weight-quantization", "int8-dynamic",
                 "--max-perplexity-increase", "-0.5", "--telemetry-hz", "0"]) == 2
    assert "over the budget" in capsys.readouterr().err
