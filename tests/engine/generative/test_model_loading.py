import json
import shutil

import pytest

from engine.errors import (
    DeviceUnavailableError,
    InputError,
    ModelNotFoundError,
    UnsupportedModelError,
)
from engine.generative.errors import DtypeUnsupportedError, IncompleteModelFolderError
from engine.generative.loading import (
    check_fits,
    dtype_problem,
    load_causal_lm,
    resolve_device,
)
from engine.generative.model_folder import check_model_folder


def copy_folder(source, target, skip=()):
    target.mkdir()
    for path in source.iterdir():
        if path.name not in skip:
            shutil.copy(path, target / path.name)
    return target


def test_complete_folder_is_described(tiny_llama_dir):
    # execute
    folder = check_model_folder(tiny_llama_dir, compute_hash=True)
    # assert
    assert folder.model_type == "llama"
    assert [p.name for p in folder.weight_files] == ["model.safetensors"]
    assert folder.tensor_count > 0 and folder.size_bytes > 0
    assert len(folder.sha256) == 64
    assert folder.has_tokenizer


def test_missing_folder_and_file_instead_of_folder(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no such folder"):
        check_model_folder(tmp_path / "absent")
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(UnsupportedModelError, match="is a file"):
        check_model_folder(tmp_path / "model.safetensors")


def test_empty_folder_lists_everything_missing(tmp_path):
    with pytest.raises(IncompleteModelFolderError) as caught:
        check_model_folder(tmp_path)
    assert caught.value.missing == ["config.json",
                                    "model.safetensors (or model.safetensors.index.json with its shards)"]
    assert "config.json" in str(caught.value) and "model.safetensors" in str(caught.value)


def test_truncated_weights_are_reported_with_sizes(tiny_llama_dir, tmp_path):
    # setup
    folder = copy_folder(tiny_llama_dir, tmp_path / "partial")
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    # execute / assert
    with pytest.raises(IncompleteModelFolderError, match=r"model.safetensors \(truncated: \d+ of \d+ bytes\)"):
        check_model_folder(folder)


def test_sharded_folder_names_the_missing_shard(tiny_llama_dir, tmp_path):
    # setup: an index that lists a second shard which was never copied
    folder = copy_folder(tiny_llama_dir, tmp_path / "sharded")
    (folder / "model.safetensors").rename(folder / "model-00001-of-00002.safetensors")
    from safetensors import safe_open

    with safe_open(folder / "model-00001-of-00002.safetensors", "np") as weights:
        names = list(weights.keys())
    weight_map = {name: "model-00001-of-00002.safetensors" for name in names}
    weight_map["lm_head.extra"] = "model-00002-of-00002.safetensors"
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    # execute
    with pytest.raises(IncompleteModelFolderError) as caught:
        check_model_folder(folder)
    # assert
    assert caught.value.missing == ["model-00002-of-00002.safetensors"]


def test_pickled_weights_only_are_refused_with_a_hint(tiny_llama_dir, tmp_path):
    folder = copy_folder(tiny_llama_dir, tmp_path / "pickled", skip={"model.safetensors"})
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x02")
    with pytest.raises(IncompleteModelFolderError, match="pickled weights"):
        check_model_folder(folder)


def test_bad_config_is_reported(tiny_llama_dir, tmp_path):
    folder = copy_folder(tiny_llama_dir, tmp_path / "bad-config")
    (folder / "config.json").write_text("{not json")
    with pytest.raises(IncompleteModelFolderError, match="config.json \\(unreadable JSON"):
        check_model_folder(folder)


def test_weights_lacking_a_tensor_are_not_filled_with_random_values(tiny_llama_dir, tmp_path):
    # setup: a well-formed safetensors file that lacks one layer's weight
    from safetensors.torch import load_file, save_file

    folder = copy_folder(tiny_llama_dir, tmp_path / "lacking", skip={"model.safetensors"})
    tensors = load_file(tiny_llama_dir / "model.safetensors")
    dropped = sorted(name for name in tensors if "layers.1.mlp" in name)[0]
    del tensors[dropped]
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    # execute / assert
    with pytest.raises(IncompleteModelFolderError, match="lack weights this architecture needs"):
        load_causal_lm(folder)


def test_loads_in_each_cpu_dtype(tiny_llama_dir):
    import torch

    for dtype in ("float32", "bfloat16"):
        lm = load_causal_lm(tiny_llama_dir, dtype=dtype)
        assert next(lm.model.parameters()).dtype == getattr(torch, dtype)
        assert lm.describe()["dtype"] == dtype
        assert lm.parameter_count > 0 and lm.vocab_size == 512 and lm.max_positions == 1024


def test_device_and_dtype_errors_say_why():
    import torch

    with pytest.raises(DeviceUnavailableError, match="use cpu or cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError, match="CUDA"):
            resolve_device("cuda")
    assert dtype_problem("cpu", "float32") is None
    assert "unknown dtype" in dtype_problem("cpu", "int3")


def test_unknown_dtype_is_refused_before_loading(tiny_llama_dir):
    with pytest.raises(DtypeUnsupportedError, match="unknown dtype"):
        load_causal_lm(tiny_llama_dir, dtype="float8")


def test_prompt_longer_than_the_context_is_refused(tiny_llama):
    check_fits(tiny_llama, 1024)
    with pytest.raises(InputError, match="context is 1024"):
        check_fits(tiny_llama, 1025)


def test_random_model_builder_refuses_unknown_choices(tmp_path):
    from engine.generative.random_models import build_random_causal_lm

    with pytest.raises(InputError, match="unknown preset"):
        build_random_causal_lm(tmp_path, preset="huge")
    with pytest.raises(InputError, match="unknown model family"):
        build_random_causal_lm(tmp_path, family="bert")
