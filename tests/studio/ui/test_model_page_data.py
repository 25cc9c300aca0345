"""Real input data from the model card: a folder of images with its normalization, a text file with a tokenizer
(issue 13). Runs record which data they used; a mistyped setting is explained before anything runs."""

import pytest

from storage.errors import RunNotFoundError
from studio import usecases
from tests.conftest import SAMPLE_CNN
from tests.engine.model.test_sample_data import write_images, write_tokenizer
from tests.studio.ui.conftest import JOB_TIMEOUT_MS, error_dialogs, fast_run_settings, idle
from tests.studio.ui.test_model_page_dims import open_and_wait


def _run(qtbot, window) -> None:
    fast_run_settings(window, iterations=10)
    window.actions["run"].trigger()
    qtbot.waitUntil(lambda: idle(window), timeout=JOB_TIMEOUT_MS)


def test_a_run_on_a_folder_of_images_records_the_folder_and_its_normalization(qtbot, window, tmp_path):
    # setup
    open_and_wait(qtbot, window, SAMPLE_CNN)
    page = window.model_page
    folder = write_images(tmp_path / "photos")

    # execute: typed into the card as a user would
    page.data_path.setText(str(folder))
    page.from_file.setChecked(True)
    page.image_mean.setText("0.485,0.456,0.406")
    page.image_std.setText("0.229,0.224,0.225")
    page.channel_order.setCurrentText("bgr")
    _run(qtbot, window)

    # assert
    assert not error_dialogs()
    source = usecases.load_run(None, 1).record.settings["inputs"]["source"]
    assert source.startswith(f"images from {folder} resized to 64×64")
    assert "BGR, (pixel / 255 - mean 0.485,0.456,0.406) / std 0.229,0.224,0.225" in source


def test_a_run_on_a_text_file_with_a_tokenizer(qtbot, window, tmp_path):
    # setup: the studio starts on its sample transformer (input_ids, attention_mask)
    texts = tmp_path / "texts.txt"
    texts.write_text("hello world\nfast model\nstudio\n")
    tokenizer = write_tokenizer(tmp_path / "tokenizer.json")
    page = window.model_page

    # execute
    page.data_path.setText(str(texts))
    page.from_file.setChecked(True)
    page.tokenizer.setText(str(tokenizer))
    _run(qtbot, window)

    # assert
    assert not error_dialogs()
    source = usecases.load_run(None, 1).record.settings["inputs"]["source"]
    assert source.startswith(f"lines of {texts} tokenized by {tokenizer}")


def test_a_text_file_without_a_tokenizer_and_a_bad_mean_are_explained(qtbot, window, tmp_path):
    # setup
    texts = tmp_path / "texts.txt"
    texts.write_text("hello world\n")
    page = window.model_page
    page.data_path.setText(str(texts))
    page.from_file.setChecked(True)

    # execute / assert: no tokenizer
    _run(qtbot, window)
    assert "needs a tokenizer" in error_dialogs()[0].text()
    error_dialogs()[0].close()

    # execute / assert: a mean that is not a number
    page.image_mean.setText("0.5,x")
    _run(qtbot, window)
    assert "image mean '0.5,x': expected 1 or 3 numbers" in error_dialogs()[0].text()
    assert window.actions["run"].isEnabled()
    with pytest.raises(RunNotFoundError):  # nothing ran, so nothing was saved
        usecases.load_run(None, 1)
