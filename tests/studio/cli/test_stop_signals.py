"""Ctrl+C and SIGTERM (issue 14): the first stops the work cooperatively and keeps what was measured, saved as
cancelled; the second ends the process at once, even when the model is stuck inside an inference."""

import json
import signal
import subprocess
import sys
import textwrap
import time

from tests.conftest import REPO, SAMPLE_CNN

STUCK_MODEL = """
import os
import torch

class Stuck(torch.nn.Module):
    def forward(self, x):
        open({marker!r}, "w").close()
        read_end, _ = os.pipe()
        os.read(read_end, 1)  # never returns: nothing is ever written to the pipe
        return x

def build():
    return Stuck()
"""


def _start(*argv) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "studio", *argv], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_second_ctrl_c_ends_a_run_stuck_inside_the_model_at_once(tmp_path):
    # setup: a forward that blocks forever in a system call
    marker = tmp_path / "inside_forward"
    source = tmp_path / "stuck.py"
    source.write_text(textwrap.dedent(STUCK_MODEL).format(marker=str(marker)))
    process = _start("bench", f"{source}:build", "--shape", "x=1x4", "--warmup", "1", "--iterations", "5",
                     "--duration", "0", "--no-save", "--telemetry-hz", "0")
    _wait_for(marker.exists, 120)

    # execute
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, err = process.communicate(timeout=10)

    # assert
    assert process.returncode == 130 and time.monotonic() - started < 3
    assert "press Ctrl+C again to quit at once" in err and "quitting at once" in err


def test_sigterm_cancels_cleanly_and_the_run_is_saved_as_cancelled(tmp_path):
    # setup
    database = tmp_path / "runs.db"
    process = _start("bench", str(SAMPLE_CNN), "--db", str(database), "--warmup", "1", "--iterations", "100000000",
                     "--duration", "600", "--telemetry-hz", "0", "--threads", "1")
    _wait_for(database.exists, 120)
    time.sleep(3)

    # execute
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)

    # assert
    assert process.returncode == 130, err
    listed = subprocess.run([sys.executable, "-m", "studio", "runs", "list", "--db", str(database), "--json"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    [run] = json.loads(listed.stdout)["runs"]
    assert run["status"] == "cancelled" and "Traceback" not in err
