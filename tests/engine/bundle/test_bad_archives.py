"""Archives are checked before they are unpacked: .npz inputs and zipped bundles that would expand past the
memory or disk there is, or that are not what they claim, are refused with one line (issue 14)."""

import zipfile

import numpy as np
import pytest

from engine.bundle.files import BundleVerificationError
from engine.bundle.verify import verify_bundle
from engine.errors import InputError
from engine.model.array_files import ArrayFileError, read_npz
from engine.model.inputs import InputRequest, prepare_inputs
from engine.model.tensors import TensorSpec

SPECS = [TensorSpec("x", "float32", (1, 4))]


def test_an_npy_given_as_inputs_is_explained(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((1, 4), np.float32))
    expected = r"not a readable \.npz archive \(an \.npy holds one unnamed array: save it with np\.savez\(path, NAME="
    with pytest.raises(InputError, match=expected):
        prepare_inputs(SPECS, InputRequest(npz=path))


def test_an_empty_member_is_explained(tmp_path):
    path = tmp_path / "empty.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", b"")
    with pytest.raises(InputError, match=r"not a readable \.npz \(ValueError: EOF: reading magic string"):
        prepare_inputs(SPECS, InputRequest(npz=path))


def test_an_npz_declaring_more_than_the_free_memory_is_refused_before_decompressing(tmp_path, monkeypatch):
    # setup: a 1 MiB array, with the machine pretending to have 1 MiB free
    import psutil

    path = tmp_path / "big.npz"
    np.savez_compressed(path, x=np.zeros((512, 512), np.float32))
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("Memory", (), {"available": 2**20})())

    # execute / assert
    with pytest.raises(ArrayFileError, match="more than half of the 0.0 GiB of memory free here"):
        read_npz(path)


def test_a_zip_bomb_bundle_is_refused_before_extracting(tmp_path):
    # setup: 100 MiB of zeros compress to about 100 KiB
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bundle/model.onnx", b"\0" * (100 * 2**20))

    # execute / assert
    with pytest.raises(BundleVerificationError, match="over 100×\\): not a bundle the studio wrote"):
        verify_bundle(path)


def test_an_npz_member_declaring_more_values_than_it_holds_is_refused_before_allocating(tmp_path):
    # setup: an .npy header claiming 10^12 float32 values, followed by 16 bytes
    import io

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.getvalue() + b"\0" * 16)

    # execute / assert
    with pytest.raises(ArrayFileError, match="declares 4,000,000,000,000 bytes of values but holds"):
        read_npz(path)


def test_npz_keys_are_checked_before_anything_is_decompressed(tmp_path, monkeypatch):
    # setup: a large member under a wrong key; decompressing it would be a test failure
    from engine.model import array_files

    path = tmp_path / "wrong_key.npz"
    np.savez_compressed(path, image=np.zeros((1024, 1024), np.float32))

    def never(*args):
        raise AssertionError("decompressed before the keys were checked")

    monkeypatch.setattr(array_files, "_read_member", never)

    # execute / assert
    with pytest.raises(InputError, match=r"keys must be the model's input names \['x'\]; missing \['x'\]; "
                                         r"unexpected \['image'\]"):
        prepare_inputs(SPECS, InputRequest(npz=path))
