"""Feeds from a folder of images and from a text file with a tokenizer, at the bound shapes."""

import numpy as np
import pytest
from PIL import Image

from engine.errors import InputError
from engine.model.image_samples import ImageNormalization
from engine.model.sample_data import SampleOptions, describe, load_samples, sample_files, sample_kind
from engine.model.tensors import TensorSpec

IMAGE = (TensorSpec("image", "float32", ("batch", 3, "height", "width")),)
TOKENS = (TensorSpec("input_ids", "int64", ("batch", "sequence")),
          TensorSpec("attention_mask", "int64", ("batch", "sequence")))
COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
WORDS = ["hello", "world", "studio", "fast", "model"]


def write_images(folder, colors=COLORS, size=(6, 4)):
    folder.mkdir()
    for index, color in enumerate(colors):
        Image.new("RGB", size, color).save(folder / f"{index:02d}.png")
    return folder


def write_tokenizer(path):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocabulary = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, **{word: 4 + i for i, word in enumerate(WORDS)}}
    tokenizer = Tokenizer(models.WordLevel(vocabulary, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer.save(str(path))
    return path


def test_images_are_resized_normalized_and_laid_out_nchw(tmp_path):
    # setup
    folder = write_images(tmp_path / "images")
    options = SampleOptions(normalization=ImageNormalization(255.0, (0.5,), (0.5,), "rgb"))

    # execute
    feeds = load_samples(folder, IMAGE, {"image": (1, 3, 5, 7)}, options, count=10)

    # assert
    assert len(feeds) == 3
    first = feeds[0]["image"]
    assert first.shape == (1, 3, 5, 7) and first.dtype == np.float32
    np.testing.assert_allclose(first[0, :, 2, 3], [1.0, -1.0, -1.0])  # red: (1 - 0.5) / 0.5, (0 - 0.5) / 0.5
    np.testing.assert_allclose(feeds[2]["image"][0, :, 0, 0], [-1.0, -1.0, 1.0])


def test_default_normalization_is_0_to_1_rgb_and_bgr_reverses_channels(tmp_path):
    # setup
    folder = write_images(tmp_path / "images", colors=[(255, 51, 0)])
    nhwc = (TensorSpec("pixels", "float32", (1, "h", "w", 3)),)

    # execute
    plain = load_samples(folder, nhwc, {"pixels": (1, 2, 2, 3)}, SampleOptions(), count=1)[0]["pixels"]
    bgr = SampleOptions(normalization=ImageNormalization(channel_order="bgr"))
    swapped = load_samples(folder, nhwc, {"pixels": (1, 2, 2, 3)}, bgr, count=1)[0]["pixels"]

    # assert
    np.testing.assert_allclose(plain[0, 1, 1], [1.0, 0.2, 0.0], rtol=1e-6)
    np.testing.assert_allclose(swapped[0, 1, 1], [0.0, 0.2, 1.0], rtol=1e-6)


def test_one_channel_input_gets_grayscale_and_a_batch_stacks_consecutive_images(tmp_path):
    # setup
    folder = write_images(tmp_path / "images", colors=[(255, 255, 255), (0, 0, 0), (255, 255, 255)])
    gray = (TensorSpec("x", "float32", ("n", 1, 4, 4)),)

    # execute
    feeds = load_samples(folder, gray, {"x": (2, 1, 4, 4)}, SampleOptions(), count=10)

    # assert
    assert len(feeds) == 1  # the third image does not fill a second batch of 2
    np.testing.assert_allclose(feeds[0]["x"][:, 0, 0, 0], [1.0, 0.0])


def test_uint8_input_gets_raw_pixels(tmp_path):
    # setup
    folder = write_images(tmp_path / "images", colors=[(200, 100, 50)])
    raw = (TensorSpec("x", "uint8", (1, 3, 2, 2)),)

    # execute
    feed = load_samples(folder, raw, {"x": (1, 3, 2, 2)}, SampleOptions(), count=1)[0]

    # assert
    assert feed["x"].dtype == np.uint8
    assert feed["x"][0, :, 0, 0].tolist() == [200, 100, 50]


def test_text_lines_are_tokenized_padded_and_masked(tmp_path):
    # setup
    tokenizer = write_tokenizer(tmp_path / "tokenizer.json")
    text = tmp_path / "texts.txt"
    text.write_text("hello world\n\nstudio fast model hello world fast\n")

    # execute
    feeds = load_samples(text, TOKENS, {"input_ids": (1, 6), "attention_mask": (1, 6)},
                         SampleOptions(tokenizer=tokenizer), count=10)

    # assert
    assert len(feeds) == 2  # the blank line is skipped
    assert feeds[0]["input_ids"].tolist() == [[2, 4, 5, 3, 0, 0]]  # [CLS] hello world [SEP] [PAD] [PAD]
    assert feeds[0]["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0]]
    assert feeds[1]["input_ids"].tolist() == [[2, 6, 7, 8, 4, 3]]  # truncated, [SEP] kept
    assert feeds[1]["attention_mask"].tolist() == [[1] * 6]
    assert feeds[0]["input_ids"].dtype == np.int64


def test_text_in_a_hugging_face_folder_with_int32_inputs_and_batch(tmp_path):
    # setup
    folder = tmp_path / "hf"
    folder.mkdir()
    write_tokenizer(folder / "tokenizer.json")
    text = tmp_path / "texts.txt"
    text.write_text("hello\nworld\nfast\n")
    specs = (TensorSpec("input_ids", "int32", ("b", "s")), TensorSpec("token_type_ids", "int32", ("b", "s")))

    # execute
    feeds = load_samples(text, specs, {"input_ids": (2, 4), "token_type_ids": (2, 4)},
                         SampleOptions(tokenizer=folder), count=10)

    # assert
    assert len(feeds) == 1
    assert feeds[0]["input_ids"].dtype == np.int32
    assert feeds[0]["input_ids"].tolist() == [[2, 4, 3, 0], [2, 5, 3, 0]]
    assert feeds[0]["token_type_ids"].tolist() == [[0] * 4, [0] * 4]


def test_describe_and_files_say_what_was_read(tmp_path):
    # setup
    folder = write_images(tmp_path / "images")
    tokenizer = write_tokenizer(tmp_path / "tokenizer.json")
    text = tmp_path / "t.txt"
    text.write_text("hello\n")
    options = SampleOptions(tokenizer=tokenizer)

    # execute
    images = describe(folder, IMAGE, {"image": (1, 3, 5, 7)}, SampleOptions())
    texts = describe(text, TOKENS, {"input_ids": (1, 6), "attention_mask": (1, 6)}, options)

    # assert
    assert images == (f"images from {folder} resized to 5×7 for 'image' 1×3×5×7 NCHW, "
                      "RGB, (pixel / 255 - mean 0) / std 1")
    assert texts == (f"lines of {text} tokenized by {tokenizer}, truncated or padded to 6 tokens, "
                     "1 line(s) per feed, for input_ids, attention_mask")
    assert (sample_kind(folder), sample_kind(text), sample_kind(tmp_path / "x.npz")) == ("images", "text", None)
    assert len(sample_files(folder, options)) == 3 and sample_files(text, options) == [text, tokenizer]


@pytest.mark.parametrize(("case", "message"), [
    ("unreadable image", r"images: image 01\.png: not a readable image"),
    ("empty folder", r"empty: the folder holds no images"),
    ("empty text", r"empty\.txt: the file holds no text"),
    ("no tokenizer", r"needs a tokenizer"),
    ("corrupt tokenizer", r"tokenizer .*bad\.json: not a readable tokenizer\.json"),
    ("folder without tokenizer", r"tokenizer .*hf holds no tokenizer\.json"),
    ("no token-id input", r"the model has no token-id input"),
    ("unsupported layout", r"input 'image' has shape 1×4×8×8; images feed only NCHW or NHWC inputs"),
    ("two inputs for images", r"a folder of images feeds a model with one image input"),
])
def test_bad_input_gives_one_clear_line(tmp_path, case, message):
    # setup
    folder = write_images(tmp_path / "images")
    (folder / "01.png").write_bytes(b"not an image")
    (tmp_path / "empty").mkdir()
    (tmp_path / "hf").mkdir()
    (tmp_path / "empty.txt").write_text("\n  \n")
    (tmp_path / "t.txt").write_text("hello\n")
    (tmp_path / "bad.json").write_text("{not json")
    tokenizer = write_tokenizer(tmp_path / "tokenizer.json")
    token_shapes = {"input_ids": (1, 4), "attention_mask": (1, 4)}
    calls = {
        "unreadable image": (folder, IMAGE, {"image": (1, 3, 4, 4)}, SampleOptions()),
        "empty folder": (tmp_path / "empty", IMAGE, {"image": (1, 3, 4, 4)}, SampleOptions()),
        "empty text": (tmp_path / "empty.txt", TOKENS, token_shapes, SampleOptions(tokenizer=tokenizer)),
        "no tokenizer": (tmp_path / "t.txt", TOKENS, token_shapes, SampleOptions()),
        "corrupt tokenizer": (tmp_path / "t.txt", TOKENS, token_shapes, SampleOptions(tokenizer=tmp_path / "bad.json")),
        "folder without tokenizer": (tmp_path / "t.txt", TOKENS, token_shapes, SampleOptions(tokenizer=tmp_path / "hf")),
        "no token-id input": (tmp_path / "t.txt", (TensorSpec("attention_mask", "int64", (1, 4)),),
                              {"attention_mask": (1, 4)}, SampleOptions(tokenizer=tokenizer)),
        "unsupported layout": (folder, (TensorSpec("image", "float32", (1, 4, 8, 8)),), {"image": (1, 4, 8, 8)},
                               SampleOptions()),
        "two inputs for images": (folder, TOKENS, token_shapes, SampleOptions()),
    }
    source, specs, shapes, options = calls[case]

    # execute / assert
    with pytest.raises(InputError, match=message) as caught:
        load_samples(source, specs, shapes, options, count=10)
    assert "\n" not in str(caught.value)
