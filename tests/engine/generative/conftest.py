"""Tiny random causal LMs built once per test session into a temp folder (nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    from engine.generative.random_models import build_random_causal_lm

    return build_random_causal_lm(tmp_path_factory.mktemp("tiny-llama"), preset="tiny", family="llama")


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    from engine.generative.random_models import build_random_causal_lm

    return build_random_causal_lm(tmp_path_factory.mktemp("tiny-gpt2"), preset="tiny", family="gpt2",
                                  with_tokenizer=False)


@pytest.fixture(scope="session")
def tiny_llama(tiny_llama_dir):
    """Shared by many tests: they must not change it (quantization works on a copy)."""
    from engine.generative.loading import load_causal_lm

    return load_causal_lm(tiny_llama_dir)


@pytest.fixture(scope="session")
def tiny_gpt2(tiny_gpt2_dir):
    from engine.generative.loading import load_causal_lm

    return load_causal_lm(tiny_gpt2_dir)
