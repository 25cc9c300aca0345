import subprocess
import sys

from tests.conftest import REPO, SAMPLE_CNN, SAMPLE_TRANSFORMER


def test_generator_reproduces_the_committed_models_byte_for_byte(tmp_path):
    # execute
    subprocess.run([sys.executable, str(REPO / "resources" / "make_sample_models.py"), str(tmp_path)],
                   check=True, capture_output=True, cwd=REPO)
    # assert
    assert (tmp_path / "sample_cnn.onnx").read_bytes() == SAMPLE_CNN.read_bytes()
    assert (tmp_path / "sample_transformer.onnx").read_bytes() == SAMPLE_TRANSFORMER.read_bytes()
    assert SAMPLE_CNN.stat().st_size + SAMPLE_TRANSFORMER.stat().st_size < 5_000_000
