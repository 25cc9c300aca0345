import importlib.util
import json
import sys
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
    (["{model}", "--max-batch", "4"], "--max-batch is how many requests serving decodes together"),
    (["{model}", "--duration", "1", "--max-batch", "4"], "needs an arrival rate"),
    (["{model}", "--rates", "1,x"], "comma-separated arrival rates"),
    (["{model}", "--rates", "1,0"], "arrival rate"),
    (["{model}", "--rates", "1", "--rate", "2"], "not both"),
    (["{model}", "--compare-kv-cache", "--no-cache"], "drop --no-cache"),
    (["{model}", "--backend", "onnxruntime-genai", "--compare-kv-cache"], "onnxruntime-genai backend runs plain"),
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


def _runs_total(capsys) -> int:
    assert main(["runs", "list", "--json"]) == 0
    return json.loads(capsys.readouterr().out)["total"]


def test_kv_cache_comparison_side_by_side(capsys, tiny_llama):
    # execute
    document = _generate(capsys, tiny_llama, "--compare-kv-cache")
    assert main(["runs", "show", str(document["run_id"]), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert main(["generate-bench", str(tiny_llama), "--prompt-len", "12", "--new-tokens", "5", "--requests", "2",
                 "--telemetry-hz", "0", "--no-save", "--compare-kv-cache"]) == 0
    text = capsys.readouterr().out
    # assert
    assert document["mode"] == "kv_cache_comparison" and document["outputs_identical"] is True
    assert document["decode_speedup"] > 0 and document["generated_tokens"] == 2 * 2 * 5
    assert document["with_cache"]["settings"]["use_cache"] and not document["without_cache"]["settings"]["use_cache"]
    assert shown["latency_samples"] == 2 * 5  # the with-cache steps, as prefix reuse stores its with-reuse ones
    assert "with_cache" in shown["summary"] and "requests" not in shown["summary"]["with_cache"]
    assert "faster with the cache; greedy outputs identical: yes" in text and "without" in text


def test_arrival_rate_sweep_finds_the_saturation_point(capsys, tiny_llama):
    # execute
    document = _generate(capsys, tiny_llama, "--rates", "1000,20", "--max-batch", "2", "--no-save")
    assert main(["generate-bench", str(tiny_llama), "--prompt-len", "12", "--new-tokens", "5", "--requests", "2",
                 "--telemetry-hz", "0", "--no-save", "--rates", "20"]) == 0
    text = capsys.readouterr().out
    # assert
    assert document["mode"] == "rate_sweep" and document["status"] == "completed"
    assert [p["rate_per_s"] for p in document["points"]] == [20.0, 1000.0]
    assert document["all_at_once"]["max_batch_reached"] <= 2 and document["settings"]["max_batch"] == 2
    saturation = document["capacity_tokens_per_s"] / 5
    assert document["saturation_rate_per_s"] == saturation
    assert [p["load"] for p in document["points"]] == [20.0 / saturation, 1000.0 / saturation]
    for point in document["points"]:
        assert point["requests"] == 2 and point["ttft_ms"]["p99"] and point["inter_token_ms"]["p50"]
    assert document["generated_tokens"] == 3 * 2 * 5  # two rates and the all-at-once stream
    assert "all at once" in text and "ITL p99" in text and "saturation  " in text


needs_genai = pytest.mark.skipif(importlib.util.find_spec("onnxruntime_genai") is None,
                                 reason="onnxruntime-genai is not installed")


@needs_genai
def test_onnx_runtime_genai_backend_is_exported_once_and_measured_alike(capsys, tiny_llama, tmp_path, monkeypatch):
    # setup
    monkeypatch.setenv("AUTOGLM_STUDIO_CACHE", str(tmp_path / "cache"))
    # execute
    document = _generate(capsys, tiny_llama, "--backend", "onnxruntime-genai")
    assert main(["runs", "show", str(document["run_id"]), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert main(["generate-bench", str(tiny_llama), "--prompt-len", "12", "--new-tokens", "5", "--requests", "2",
                 "--telemetry-hz", "0", "--no-save", "--backend", "onnxruntime-genai", "--threads", "1"]) == 0
    text = capsys.readouterr().out
    # assert
    assert document["backend"] == "onnxruntime-genai" and document["model"]["backend"] == "onnxruntime-genai"
    assert document["summary"]["ttft_ms"]["count"] == 2 and document["summary"]["decode_tokens_per_s"] > 0
    assert document["summary"]["tpot_ms"]["count"] == 2 * 4
    export = document["onnxruntime_genai_export"]
    assert export["cached"] is False and export["path"].startswith(str(tmp_path / "cache"))
    assert shown["backend"] == "onnxruntime-genai" and shown["latency_samples"] == 2 * 5
    assert f"{export['path']} (from the cache)" in text and "ONNX Runtime GenAI fp32" in text


def test_missing_onnxruntime_genai_is_a_one_line_error(capsys, tiny_llama, monkeypatch):
    # setup: the package cannot be imported, as on an install without the genai extra
    monkeypatch.setitem(sys.modules, "onnxruntime_genai", None)
    # execute
    code = main(["generate-bench", str(tiny_llama), "--backend", "onnxruntime-genai"])
    # assert
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "onnxruntime-genai package, which is not installed: pip install onnxruntime-genai" in err
    assert _runs_total(capsys) == 0


def test_plain_generation_text_shows_the_figures(capsys, tiny_llama):
    # execute
    assert main(["generate-bench", str(tiny_llama), "--prompt-len", "12", "--new-tokens", "5", "--requests", "2",
                 "--telemetry-hz", "0", "--no-save"]) == 0
    text = capsys.readouterr().out
    # assert
    assert "(llama, " in text and "float32 on cpu" in text and "mode        generation; status completed" in text
    assert "TTFT" in text and "TPOT" in text and "tokens/s    prefill " in text
    assert "* from too few samples to mean much" in text  # two TTFT samples cannot give a p90
