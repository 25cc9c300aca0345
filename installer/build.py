"""Build the one-folder desktop app with PyInstaller, then prove it starts: `make installer` runs this.

    python installer/build.py            # build into build/installer/dist/autoglm-studio, then smoke-test it
    python installer/build.py --no-build # smoke-test an existing build
    python installer/build.py --json     # the figures as one JSON object on the last line

The smoke test runs the frozen binary as a user would, with no display and a throwaway database: `--version`
(timed: the cold start) and the headless `demo`, which benchmarks both sample models end to end. It prints
the folder's size. Any failure exits non-zero with the reason, so CI can gate on it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPEC = HERE / "autoglm-studio.spec"
NAME = "autoglm-studio"
DEFAULT_OUT = ROOT / "build" / "installer"
DEMO_TIMEOUT_S = 600
DEMO_SECONDS = "0.3"  # per timed loop: the smoke test proves the loop works, it does not measure it
DESKTOP_FILES = (HERE / "linux" / "autoglm-studio.desktop", HERE / "linux" / "install-desktop-entry.sh",
                 HERE / "autoglm-studio.png", HERE / "autoglm-studio.svg")


class BuildFailed(Exception):
    """The build or its smoke test failed; the message says which step and why."""


def build(out: Path = DEFAULT_OUT) -> Path:
    """Run PyInstaller on the spec; returns the app folder (dist/autoglm-studio)."""
    if importlib.util.find_spec("PyInstaller") is None:
        raise BuildFailed("PyInstaller is not installed: pip install 'pyinstaller>=6.10' (the 'installer' extra)")
    dist, work = out / "dist", out / "work"
    command = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
               "--distpath", str(dist), "--workpath", str(work), str(SPEC)]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if completed.returncode != 0:
        raise BuildFailed(f"PyInstaller failed (exit {completed.returncode}):\n{completed.stderr[-4000:]}")
    app = dist / NAME
    if sys.platform.startswith("linux"):
        for path in DESKTOP_FILES:
            shutil.copy2(path, app / path.name)
    return app


def executable(app: Path) -> Path:
    return app / (NAME + ".exe" if sys.platform == "win32" else NAME)


def folder_size(folder: Path) -> tuple[int, int]:
    """Bytes and files of the app folder, links not followed."""
    files = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    return sum(p.stat().st_size for p in files), len(files)


def headless_environment(scratch: Path) -> dict[str, str]:
    """No display, a throwaway database and cache: the smoke test must not touch the user's data."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "PYTHONPATH", "PYTHONHOME")}
    environment["AUTOGLM_STUDIO_DB"] = str(scratch / "smoke.db")
    environment["AUTOGLM_STUDIO_CACHE"] = str(scratch / "cache")
    return environment


def cold_start_seconds(binary: Path, environment: dict[str, str]) -> tuple[float, str]:
    """Wall time from exec to exit of `--version`, and what it printed."""
    started = time.perf_counter()
    completed = subprocess.run([str(binary), "--version"], capture_output=True, text=True, env=environment, timeout=120)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise BuildFailed(f"{binary.name} --version failed (exit {completed.returncode}): {completed.stderr.strip()}")
    return elapsed, completed.stdout.strip()


def smoke_test(app: Path) -> dict:
    binary = executable(app)
    if not binary.is_file():
        raise BuildFailed(f"{binary}: no frozen binary; build it first (python installer/build.py)")
    with tempfile.TemporaryDirectory(prefix="autoglm-installer-smoke-") as folder:
        environment = headless_environment(Path(folder))
        cold_start, version = cold_start_seconds(binary, environment)
        started = time.perf_counter()
        demo = subprocess.run([str(binary), "demo", "--duration", DEMO_SECONDS], capture_output=True, text=True,
                              env=environment, timeout=DEMO_TIMEOUT_S, stdin=subprocess.DEVNULL)
        demo_seconds = time.perf_counter() - started
        if demo.returncode != 0:
            raise BuildFailed(f"{binary.name} demo failed (exit {demo.returncode}): {demo.stderr.strip()[-2000:]}")
        completed_runs = demo.stdout.count("status      completed")
        if completed_runs < 2:
            raise BuildFailed(f"{binary.name} demo finished but completed {completed_runs} of 2 sample benchmarks:\n"
                              f"{demo.stdout[-2000:]}")
        extras = _exercise_reports_and_bundles(binary, environment, Path(folder))
    size, files = folder_size(app)
    return {**extras, "app": str(app), "version": version, "cold_start_version_s": round(cold_start, 3),
            "demo_s": round(demo_seconds, 2), "demo_benchmarks_completed": completed_runs,
            "size_bytes": size, "size_mib": round(size / 2**20, 1), "files": files,
            "torch_bundled": (app / "_internal" / "torch").exists()}


def _exercise_reports_and_bundles(binary: Path, environment: dict[str, str], scratch: Path) -> dict:
    """Once the CLI has `report` and `export`, render a report and export a bundle of the demo's first run: proof
    that templates, matplotlib and the sample models were all packaged. Skipped (and said so) before then."""
    figures: dict = {}
    if _has_command(binary, "report", environment):
        output = scratch / "report.html"
        _frozen_run(binary, ["report", "--run", "1", "-o", str(output)], environment)
        if "data:image/svg+xml" not in output.read_text(encoding="utf-8"):
            raise BuildFailed(f"{binary.name} report wrote a report without its plots")
        figures["report_bytes"] = output.stat().st_size
    else:
        figures["report_bytes"] = "skipped: the CLI has no report command yet"
    if _has_command(binary, "export", environment):
        bundle = scratch / "bundle"
        _frozen_run(binary, ["export", "--run", "1", "-o", str(bundle)], environment)
        if not (bundle / "manifest.json").is_file() or not (bundle / "report.html").is_file():
            raise BuildFailed(f"{binary.name} export wrote no complete bundle in {bundle}")
        figures["bundle_files"] = len(list(bundle.iterdir()))
    else:
        figures["bundle_files"] = "skipped: the CLI has no export command yet"
    return figures


def _has_command(binary: Path, command: str, environment: dict[str, str]) -> bool:
    return subprocess.run([str(binary), command, "--help"], capture_output=True, env=environment,
                          timeout=120).returncode == 0


def _frozen_run(binary: Path, arguments: list[str], environment: dict[str, str]) -> None:
    completed = subprocess.run([str(binary), *arguments], capture_output=True, text=True, env=environment,
                               timeout=DEMO_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if completed.returncode != 0:
        raise BuildFailed(f"{binary.name} {' '.join(arguments)} failed (exit {completed.returncode}): "
                          f"{completed.stderr.strip()[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"build folder (default {DEFAULT_OUT})")
    parser.add_argument("--no-build", action="store_true", help="smoke-test the existing build only")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    try:
        if args.no_build:
            app = args.out / "dist" / NAME
        else:
            started = time.perf_counter()
            print(f"building {NAME} with PyInstaller (one folder, ONNX Runtime only)...", flush=True)
            app = build(args.out)
            print(f"built {app} in {time.perf_counter() - started:.0f} s", flush=True)
        figures = smoke_test(app)
    except (BuildFailed, subprocess.TimeoutExpired) as error:
        print(f"installer: error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{figures['version']}: --version cold start {figures['cold_start_version_s']:.2f} s; "
              f"demo completed {figures['demo_benchmarks_completed']} benchmarks in {figures['demo_s']:.1f} s")
        print(f"report: {figures['report_bytes']}; deployment bundle files: {figures['bundle_files']}")
        print(f"bundle size: {figures['size_mib']:.1f} MiB in {figures['files']:,} files ({app})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
