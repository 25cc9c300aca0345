"""Does every model of the models-in-the-wild corpus go through the whole path, at shapes that make sense?

Per model, through the CLI in subprocesses (as a user runs it) with a throwaway database:
inspect → bench → optimize --quantize auto with a cosine budget → export the saved artifact → verify-bundle.
Prints one row per model: shapes chosen and why, parameters, MACs at those shapes, FP32 p50 latency, the
auto choice, its speedup (measured side by side in the same optimize run), its fidelity with the data it
was measured on, and how export and verify ended. A model that fails shows its error in its row; the
others still run. The corpus comes from tests/wild/corpus.py (AUTOGLM_WILD, else ~/.cache/autoglm-wild).

    .venv/bin/python benchmarks/wild_models.py [--quick] [--model KEY ...] [--timeout-s 900] [--budget-cosine 0.99]

Printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the corpus list lives with the tests (tests/wild/corpus.py)

from tests.wild.corpus import CORPUS, KEYS, corpus_folder  # noqa: E402

CLI = [sys.executable, "-m", "studio"]
EXIT_REJECTED = 3
COLUMNS = ("model", "shapes (why)", "params", "MACs", "FP32 p50", "auto choice", "speedup", "fidelity (data)",
           "export", "verify")


class StepFailed(Exception):
    pass


class Budget:
    """The per-model time limit, shared by its steps."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise StepFailed("out of time (--timeout-s)")
        return left


def cli(step: str, args: list[str], budget: Budget, *, accept=(0,)) -> tuple[int, dict]:
    """Run one CLI command with --json; its exit status and document, or StepFailed with its last error line."""
    try:
        done = subprocess.run([*CLI, *args, "--json"], capture_output=True, text=True, timeout=budget.left(), cwd=ROOT)
    except subprocess.TimeoutExpired as error:
        raise StepFailed(f"{step}: out of time (--timeout-s)") from error
    if done.returncode not in accept:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise StepFailed(f"{step}: {last}")
    try:
        return done.returncode, json.loads(done.stdout)
    except json.JSONDecodeError as error:
        raise StepFailed(f"{step}: no JSON on stdout ({error})") from error


def shapes_text(inputs: dict) -> str:
    shapes = "; ".join(f"{name} {'×'.join(map(str, shape)) or 'scalar'}" for name, shape in inputs["shapes"].items())
    why = [f"{dim}={c['size']} {c['reason']}{' (guessed)' if c['guessed'] else ''}"
           for dim, c in inputs.get("dim_choices", {}).items()]
    return f"{shapes} ({'; '.join(why) if why else 'all dims fixed by the model'})"


def macs_text(model: Path, inputs: dict) -> str:
    from engine.model.macs import count_macs

    report = count_macs(model, {name: tuple(shape) for name, shape in inputs["shapes"].items()})
    unknown = f" ({report.unknown} not counted)" if report.unknown else ""
    return f"{report.total / 1e6:,.1f} M{unknown}"


def fidelity_text(fidelity: dict) -> str:
    budget = fidelity.get("budget") or {}
    data = fidelity.get("data") or {}
    source = data.get("description") or ("synthetic" if data.get("synthetic") else "n/a")
    worst = [o["cosine"] for o in fidelity.get("outputs", []) if o.get("cosine") is not None]
    figure = f"cos {min(worst):.4f}" if worst else "not measurable"
    verdict = budget.get("verdict") or ("meets budget" if budget.get("met") else "below budget" if budget else "")
    return f"{figure}, {verdict} ({source})".replace(", (", " (")


def run_model(key: str, model: Path, work: Path, args) -> dict[str, str]:
    row = dict.fromkeys(COLUMNS, "n/a") | {"model": key}
    db = ["--db", f"sqlite:///{work / 'runs.db'}"]
    budget = Budget(args.timeout_s)
    iterations, duration = ("10", "0.5") if args.quick else ("100", "3")
    try:
        _, handle = cli("inspect", ["inspect", str(model)], budget)
        row["params"] = f"{handle['parameter_count']:,}"
        _, bench = cli("bench", ["bench", str(model), *db, "--threads", "1", "--telemetry-hz", "0",
                                 "--warmup", "3", "--iterations", iterations, "--duration", duration], budget)
        row["shapes (why)"] = shapes_text(bench["inputs"])
        row["MACs"] = macs_text(model, bench["inputs"])
        row["FP32 p50"] = f"{bench['latency_ms']['p50']:.2f} ms"
        optimize = ["optimize", str(model), "-o", str(work / f"{key}_auto.onnx"), *db, "--quantize", "auto",
                    "--budget-cosine", str(args.budget_cosine), "--threads", "1",
                    "--compare-seconds", "0.5" if args.quick else "2"]
        if args.quick:
            optimize += ["--fidelity-samples", "8", "--calibration-samples", "8",
                         "--quantization-auto-seconds-per-candidate", "0.5"]
        code, result = cli("optimize", optimize, budget, accept=(0, EXIT_REJECTED))
        auto = result.get("auto") or {}
        row["auto choice"] = auto.get("choice", "n/a") + ("" if code == 0 else " (rejected)")
        speedup = (result.get("before_after") or {}).get("speedup")
        row["speedup"] = f"{speedup:.2f}×" if speedup else "n/a"
        row["fidelity (data)"] = fidelity_text(result.get("fidelity") or {})
        if code == EXIT_REJECTED or not result.get("artifact_id"):
            row["export"] = row["verify"] = "skipped: nothing saved"
            return row
        bundle = work / f"{key}_bundle"
        cli("export", ["export", "--artifact", str(result["artifact_id"]), "-o", str(bundle), *db], budget)
        row["export"] = "ok"
        cli("verify-bundle", ["verify-bundle", str(bundle), "--run-predict"], budget)
        row["verify"] = "ok"
    except (StepFailed, KeyError, TypeError, ValueError) as error:
        failed = next(column for column in COLUMNS if row[column] == "n/a")
        row[failed] = f"FAILED {type(error).__name__ if not isinstance(error, StepFailed) else ''}{error}".strip()
    return row


def print_table(rows: list[dict[str, str]]) -> None:
    widths = {column: max(len(column), *(len(row[column]) for row in rows)) for column in COLUMNS}
    print("  ".join(column.ljust(widths[column]) for column in COLUMNS))
    print("  ".join("-" * widths[column] for column in COLUMNS))
    for row in rows:
        print("  ".join(row[column].ljust(widths[column]) for column in COLUMNS))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sample counts and short timings")
    parser.add_argument("--model", action="append", choices=KEYS, help="only this corpus model (repeatable)")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="per-model time limit (default 900)")
    parser.add_argument("--budget-cosine", type=float, default=0.99, help="the optimize budget (default 0.99)")
    args = parser.parse_args()
    try:
        folder = corpus_folder()
    except RuntimeError as error:
        print(f"the corpus could not be prepared: {error}")
        return 1
    if folder is None:
        print("AUTOGLM_WILD=skip: nothing to run")
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="wild-models-") as temp:
        for model in (m for m in CORPUS if not args.model or m.key in args.model):
            work = Path(temp) / model.key
            work.mkdir()
            started = time.monotonic()
            rows.append(run_model(model.key, folder / model.relative_path, work, args))
            print(f"{model.key}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
