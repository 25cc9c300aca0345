"""Fuzz one harness (fuzz/harnesses.py) with atheris for a given time, then print what it found.

    .venv/bin/python fuzz/run.py NAME [--seconds 600] [--work /tmp/autoglm-fuzz]

The repository's corpus (fuzz/corpus/NAME) and crashers (fuzz/crashers/NAME) seed a working corpus under --work,
which grows as coverage does; the repository's folders are never written. Unlike plain libFuzzer, an untyped
exception does not stop the run: each distinct one (type and the line that raised it) is saved once under
WORK/NAME/findings/ with its traceback, and the run goes on. At the end: executions, coverage (libFuzzer's
`cov:` line) and the number of distinct untyped exceptions. Hangs (-timeout) and crashes of the interpreter
stop the run, as libFuzzer does; their inputs land in WORK/NAME/findings/ too.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import shutil
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Our modules the harnesses reach: instrumented for coverage (third-party code is not).
INSTRUMENTED = ("core.bounded_json", "engine.model.array_files", "engine.model.opening", "engine.model.onnx_loader",
                "engine.model.onnx_parameters", "engine.model.tensors", "engine.model.dim_roles",
                "engine.model.inputs", "engine.optimize.recipe", "engine.optimize.settings", "engine.optimize.params",
                "engine.bundle.files", "engine.bundle.verify", "storage.packing")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--work", type=Path, default=Path("/tmp/autoglm-fuzz"))
    args, libfuzzer = parser.parse_known_args()
    import atheris

    with atheris.instrument_imports():
        for module in INSTRUMENTED:
            importlib.import_module(module)
    from fuzz.harnesses import EXPECTED, HARNESSES

    harness = HARNESSES[args.name]
    work = args.work / args.name
    corpus, findings = work / "corpus", work / "findings"
    for folder in (corpus, findings):
        folder.mkdir(parents=True, exist_ok=True)
    for seeds in (ROOT / "fuzz" / "corpus" / args.name, ROOT / "fuzz" / "crashers" / args.name):
        for seed in sorted(seeds.glob("*")) if seeds.is_dir() else ():
            shutil.copyfile(seed, corpus / seed.name)
    seen: set[str] = set()

    def one_input(data: bytes) -> None:
        try:
            harness(data)
        except EXPECTED:
            raise  # the harness lets none through; kept for clarity
        except Exception as error:  # noqa: BLE001 - an untyped exception is what we are looking for
            frame = traceback.extract_tb(error.__traceback__)[-1]
            key = f"{type(error).__name__} at {frame.filename}:{frame.lineno}"
            if key not in seen:
                seen.add(key)
                digest = hashlib.sha256(data).hexdigest()[:16]
                (findings / f"{digest}.input").write_bytes(data)
                (findings / f"{digest}.txt").write_text(f"{key}\n\n{traceback.format_exc()}")
                (work / "summary.json").write_text(json.dumps({"untyped": sorted(seen)}, indent=2))
                print(f"FINDING {len(seen)}: {key}: {str(error)[:200]}", flush=True)

    (work / "summary.json").write_text(json.dumps({"untyped": []}))
    atheris.Setup([sys.argv[0], f"-max_total_time={args.seconds}", "-timeout=30", "-rss_limit_mb=4096",
                   "-print_final_stats=1", f"-artifact_prefix={findings}/", *libfuzzer, str(corpus)], one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
