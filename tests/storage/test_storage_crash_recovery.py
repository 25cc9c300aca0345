"""A writer killed with SIGKILL mid-run loses nothing it flushed, and the next open marks its run interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from storage import open_database

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("crashing_writer.py")


def test_kill_9_mid_run_then_reopen_shows_the_run_interrupted_with_its_samples(database_url: str):
    # setup
    count = 25_000
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, str(CHILD), database_url, str(count)], cwd=REPO, env=environment,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline().strip()
        assert line.startswith("saved "), f"child did not save: {line!r} {child.stderr.read()}"
        run_id = int(line.split()[1])
        with open_database(database_url) as while_alive:
            status_while_alive = while_alive.runs.get_run(run_id).status

        # execute
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        with open_database(database_url) as reopened:
            marked = reopened.interrupted_at_open
            data = reopened.runs.load_run(run_id)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()

    # assert
    assert status_while_alive == "running"  # a live writer's run is never taken for a crashed one
    assert child.returncode == -signal.SIGKILL
    assert marked == (run_id,)
    assert data.record.status == "interrupted"
    assert len(data.latency) == count and data.latency.latencies_ns[-1] == count - 1 + 500
