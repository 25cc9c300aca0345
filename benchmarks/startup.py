"""How long from starting the studio to its first shown window? Target: ≤ 2 s, median of 5 runs.

Each run spawns a fresh `python -m studio gui` (the same path as `autoglm-studio`), offscreen,
with an empty settings file, and stops at the main window's first paint. The clock starts before
the process is spawned, so interpreter start-up and every import count.

    .venv/bin/python benchmarks/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 2.0
# Runs inside the child: report the wall clock at the main window's first paint, then quit.
CHILD = """
import sys, time
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv)

class FirstPaint(QObject):
    def eventFilter(self, watched, event):
        if event.type() == QEvent.Type.Paint and isinstance(watched, QMainWindow):
            print(f"FIRST_PAINT {time.time():.6f}", flush=True)
            app.removeEventFilter(self)
            watched.close()
        return False

probe = FirstPaint()
app.installEventFilter(probe)
from studio.cli.main import main
sys.exit(main(["gui"]))
"""


def one_run(workdir: Path) -> float:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "AUTOGLM_STUDIO_DB": str(workdir / "studio.db"),
           "XDG_CONFIG_HOME": str(workdir / "config")}
    started = time.time()
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=120)
    marker = next((line for line in result.stdout.splitlines() if line.startswith("FIRST_PAINT")), None)
    if marker is None:
        raise SystemExit(f"the window never painted:\n{result.stdout}\n{result.stderr}")
    return float(marker.split()[1]) - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times = []
    for index in range(args.runs):
        with tempfile.TemporaryDirectory() as workdir:
            times.append(one_run(Path(workdir)))
        print(f"run {index + 1}: {times[-1]:.3f} s to the first shown window")
    median = statistics.median(times)
    print(f"median of {args.runs}: {median:.3f} s ({'meets' if median <= TARGET_S else 'MISSES'} the ≤ {TARGET_S:g} s target)")


if __name__ == "__main__":
    main()
