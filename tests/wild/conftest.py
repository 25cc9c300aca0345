"""Session fixtures of the models-in-the-wild corpus (tests/wild/corpus.py says where it comes from)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.wild.corpus import CORPUS, corpus_folder


@pytest.fixture(scope="session")
def wild_folder() -> Path:
    try:
        folder = corpus_folder()
    except RuntimeError as error:
        pytest.fail(f"the models-in-the-wild corpus could not be prepared: {error}. "
                    "Fix the cause, point AUTOGLM_WILD at a prepared folder, or set AUTOGLM_WILD=skip "
                    "to skip these tests on purpose.", pytrace=False)
    if folder is None:
        pytest.skip("AUTOGLM_WILD=skip: the models-in-the-wild tests were skipped on request")
    return folder


@pytest.fixture(scope="session")
def wild_models(wild_folder: Path) -> dict[str, Path]:
    """Corpus key -> model path."""
    return {model.key: wild_folder / model.relative_path for model in CORPUS}
