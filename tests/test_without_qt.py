"""The Qt-free run of `make test` really has no Qt: a test that imports it fails there."""

import subprocess
import sys

from tests.conftest import REPO


def test_the_qt_free_run_refuses_qt_imports(tmp_path):
    # setup
    probe = tmp_path / "test_probe.py"
    probe.write_text("def test_imports_qt():\n    import pyqtgraph  # noqa: F401\n")
    # execute
    run = subprocess.run([sys.executable, str(REPO / "tests" / "without_qt.py"), "-q", "-p", "no:cacheprovider",
                          "--rootdir", str(tmp_path), str(probe)], capture_output=True, text=True, timeout=600)
    # assert
    assert run.returncode == 1, run.stdout + run.stderr
    assert "blocked: this run proves the code is Qt-free" in run.stdout
