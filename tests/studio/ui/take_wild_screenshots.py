"""Screenshots of a third-party model with guessed dims and of a rejected optimization, light and dark, at
1280×720 and 1600×900: to look at before calling issue 13's GUI work done.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/studio/ui/take_wild_screenshots.py OUT_DIR

The models: the corpus's CRNN recognizer (a free image_width, sized from its fixed height), a model whose
middle dim has no role a tool could know (guessed), and a Paddle-style classifier (-1×3×?×?,
tests/wild/awkward_models.py), whose dynamic INT8 is run under a relative-error budget it cannot meet. Uses a throwaway database, data and cache folder; the PNGs are
not committed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

SIZES = ((1280, 720), (1600, 900))


def main(out: Path) -> None:
    from screenshot_wait import screenshot_app, themed_window, throwaway_studio  # a sibling of this script

    work = throwaway_studio("autoglm-wild-shots-")
    from PySide6.QtWidgets import QCheckBox

    from tests.studio.ui.test_model_page_dims import matmul_model
    from tests.wild.awkward_models import paddle_style_classifier
    from tests.wild.corpus import CORPUS, corpus_folder

    folder = corpus_folder()
    if folder is None:
        raise SystemExit("AUTOGLM_WILD=skip: these screenshots need the corpus")
    recognizer = folder / next(m.relative_path for m in CORPUS if m.key == "ddddocr_common")
    classifier = paddle_style_classifier(work / "paddle_style.onnx")
    guessed = matmul_model(work)
    app, wait = screenshot_app(out, patience_s=300.0)

    for theme in ("light", "dark"):
        window = themed_window(app, work, theme, SIZES[0])
        window.start(str(recognizer))

        def opened(path: Path) -> None:
            wait(lambda: window.state.model is not None and window.state.model.handle.name == path.name
                 and window.runner.idle and window.model_page.macs.text() != "counting…")

        def shot(name: str) -> None:
            for width, height in SIZES:
                window.resize(width, height)
                wait(lambda: True)
                window.grab().save(str(out / f"{name}_{theme}_{width}x{height}.png"))

        opened(recognizer)
        shot("wild_recognizer_dims")
        window.workflows.open_model(str(guessed))
        opened(guessed)
        shot("wild_model_guessed_dims")
        window.workflows.open_model(str(classifier))
        opened(classifier)
        shot("wild_paddle_style_dims")
        page = window.optimize_page
        quantization = page.form.selector("quantization")
        quantization.setCurrentIndex(quantization.findData("dynamic_int8"))
        budget = page.form.editor("budget", "max_relative_error")
        budget.parent().findChild(QCheckBox).setChecked(True)
        budget.setValue(0.001)
        window.state.update_run_settings(compare_seconds=0.5)
        window.show_page("Optimize")
        page.optimize_button.click()
        wait(lambda: window.runner.idle and "optimize" in window.state.jobs.latest)
        shot("wild_optimize_rejected")
        window.close()
        window.deleteLater()
        app.processEvents()
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots"))
