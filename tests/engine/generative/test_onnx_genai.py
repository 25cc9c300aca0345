import importlib.util
import shutil
from pathlib import Path

import pytest

from engine.errors import InputError
from engine.generative import onnx_genai
from engine.generative.benchmark import run_generation_benchmark
from engine.generative.errors import OnnxGenAIUnavailableError
from engine.generative.onnx_genai import (
    CACHE_ENV,
    GenAIModel,
    cached_genai_export,
    export_genai_model,
    run_genai_benchmark,
)
from engine.generative.settings import GenerationSettings

pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnxruntime_genai") is None,
                                reason="onnxruntime-genai is not installed")


@pytest.fixture(scope="module")
def export_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("genai-cache")


@pytest.fixture(scope="module")
def first_export(tiny_llama_dir, export_cache):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(export_cache))
        return cached_genai_export(tiny_llama_dir)


@pytest.fixture(scope="module")
def exported(first_export) -> Path:
    return first_export.path


def test_export_writes_a_complete_folder_and_nothing_else(exported):
    assert {"genai_config.json", "model.onnx"} <= {p.name for p in exported.iterdir()}
    assert [p.name for p in exported.parent.iterdir()] == [exported.name]  # the staging folder is gone


def test_onnx_runtime_tokens_match_pytorch(exported, tiny_llama):
    # setup
    settings = GenerationSettings(prompt_tokens=10, new_tokens=6, batch_size=2, requests=2, warmup_requests=1)
    # execute
    onnx_result = run_genai_benchmark(GenAIModel(exported, threads=1), settings)
    torch_result = run_generation_benchmark(tiny_llama, settings)
    # assert
    assert [r.output_ids for r in onnx_result.requests] == [r.output_ids for r in torch_result.requests]
    record = onnx_result.requests[0]
    assert record.new_tokens == 6 and record.decode_latencies_ns.size == 5 and record.ttft_ns <= record.total_ns
    assert onnx_result.model["backend"] == "onnxruntime-genai"


def test_the_generator_has_no_cache_off_mode(exported):
    with pytest.raises(InputError, match="always uses its KV cache"):
        run_genai_benchmark(GenAIModel(exported), GenerationSettings(use_cache=False))


def test_export_refuses_existing_target_and_missing_tokenizer(exported, tiny_gpt2_dir, tiny_llama_dir, tmp_path):
    with pytest.raises(InputError, match="already exists"):
        export_genai_model(tiny_llama_dir, exported)
    with pytest.raises(OnnxGenAIUnavailableError, match="needs the model's tokenizer"):
        export_genai_model(tiny_gpt2_dir, tmp_path / "gpt2-onnx")
    assert not (tmp_path / "gpt2-onnx").exists()


def test_builder_failure_is_reported_and_cleaned_up(tiny_gpt2_dir, tmp_path):
    # setup: GPT-2 with a tokenizer is still an architecture the builder does not support
    folder = tmp_path / "gpt2"
    shutil.copytree(tiny_gpt2_dir, folder)
    from engine.generative.random_models import build_tokenizer

    build_tokenizer(512).save_pretrained(folder)
    # execute / assert
    with pytest.raises(OnnxGenAIUnavailableError, match="builder failed"):
        export_genai_model(folder, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpt2"]


def test_the_export_is_kept_in_the_cache(first_export, tiny_llama_dir, export_cache, monkeypatch):
    # setup
    monkeypatch.setenv(CACHE_ENV, str(export_cache))
    # execute
    again = cached_genai_export(tiny_llama_dir)
    # assert
    assert first_export.export_ms > 0 and again.export_ms is None
    assert again.path == first_export.path and again.path.is_relative_to(export_cache)
    assert again.source.sha256 == first_export.source.sha256 and again.to_dict()["cached"] is True


def test_an_edited_folder_is_exported_again(tiny_llama_dir, tmp_path, monkeypatch):
    # setup: a copy of the folder, and a builder stand-in that writes a minimal export
    folder = tmp_path / "model"
    shutil.copytree(tiny_llama_dir, folder)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    built = []

    def build(source, target, *, precision, cancel):
        built.append(target)
        target.mkdir(parents=True)
        (target / "genai_config.json").write_text("{}")
        return target

    monkeypatch.setattr(onnx_genai, "export_genai_model", build)
    first = cached_genai_export(folder)
    # execute: a tokenizer change alone must give a new export; the same files must not
    (folder / "tokenizer.json").write_text((folder / "tokenizer.json").read_text() + " ")
    edited = cached_genai_export(folder)
    again = cached_genai_export(folder)
    # assert
    assert built == [first.path, edited.path] and first.path != edited.path
    assert again.path == edited.path and again.export_ms is None
