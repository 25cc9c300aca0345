"""Running a bundle's predict.py as a user would, in a clean child process, only when verification is asked to:
`python -I` (no PYTHONPATH, no user site), an empty temporary working folder, a minimal environment, and no
network where Linux user namespaces allow `unshare --net`. The child reports which of the studio's packages
predict.py imported (it must import none); it is stopped on cancel or after PREDICT_TIMEOUT_S.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from engine.bundle.files import BundleCancelled, BundleVerificationError
from engine.device.environment import THREAD_VARIABLES
from engine.errors import first_line

OUR_PACKAGES = ("engine", "studio", "storage", "profilers")
PREDICT_TIMEOUT_S = 600.0
# Runs predict.py as `python predict.py INPUTS -o OUTPUTS --provider P` would, then says which of our packages it
# imported (it must import none) on its last stdout line.
_CHILD = r"""
import json, runpy, sys
script, inputs, outputs, provider = sys.argv[1:5]
before = set(sys.modules)
sys.argv = [script, inputs, "-o", outputs, "--provider", provider]
code = 0
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as stop:
    code = stop.code
if isinstance(code, str):
    sys.stderr.write(code + "\n")
    code = 1
ours = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in OURS)
print(json.dumps({"exit": code or 0, "ours": ours}))
""".replace("OURS", repr(set(OUR_PACKAGES)))


@functools.cache
def no_network_prefix() -> tuple[str, ...]:
    """The command prefix that runs a child without network (Linux user and network namespaces), or () where
    this system does not allow it."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    prefix = (unshare, "--net", "--map-root-user")
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ()
    return prefix if probe.returncode == 0 else ()


def run_in_child(script: Path, feed: dict[str, np.ndarray], provider: str, work: Path,
                 cancel: threading.Event, isolation: tuple[str, ...]) -> dict[str, np.ndarray]:
    """predict.py's outputs on `feed`, from a child run in `work` (behind `isolation`, see no_network_prefix)."""
    inputs, outputs = work / "inputs.npz", work / "outputs.npz"
    np.savez(inputs, **feed)
    command = [*isolation, python_interpreter(), "-I", "-c", _CHILD, str(script), str(inputs), str(outputs), provider]
    environment = {key: os.environ[key] for key in ("PATH", "SYSTEMROOT", "HOME", "TMPDIR", "TEMP", "TMP",
                                                    *THREAD_VARIABLES) if key in os.environ}
    process = subprocess.Popen(command, cwd=work, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    stdout, stderr = _wait(process, cancel)
    lines = stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if process.returncode != 0 or not isinstance(result, dict) or result.get("exit") != 0:
        detail = first_line(stderr.strip().splitlines()[-1]) if stderr.strip() else f"exit status {process.returncode}"
        raise BundleVerificationError(f"predict.py failed in a clean process: {detail}")
    if result["ours"]:
        raise BundleVerificationError(f"predict.py imports the studio's own code ({', '.join(result['ours'])}); "
                                      "a bundle must run without it")
    with np.load(outputs, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def python_interpreter() -> str:
    """This Python; in the frozen desktop build, which has none, the first Python on PATH (as a user would run it)."""
    if not getattr(sys, "frozen", False):
        return sys.executable
    found = shutil.which("python3") or shutil.which("python")
    if found is None:
        raise BundleVerificationError("running predict.py needs a Python with numpy and the model's runtime, and "
                                      "none is on PATH; install Python, or verify with a pip-installed studio")
    return found


def _wait(process: subprocess.Popen, cancel: threading.Event) -> tuple[str, str]:
    """Wait for the child, stopping it (and only it) on cancel or after PREDICT_TIMEOUT_S."""
    waited = 0.0
    while True:
        try:
            return process.communicate(timeout=0.2)
        except subprocess.TimeoutExpired:
            waited += 0.2
            if cancel.is_set() or waited >= PREDICT_TIMEOUT_S:
                process.kill()
                process.communicate()
                if cancel.is_set():
                    raise BundleCancelled("verification cancelled") from None
                raise BundleVerificationError(f"predict.py ran longer than {PREDICT_TIMEOUT_S:g} s") from None
