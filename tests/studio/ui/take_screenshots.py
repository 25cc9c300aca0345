"""Screenshots of every view with data in it, in light and dark themes, to look at before calling GUI work done.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/studio/ui/take_screenshots.py OUT_DIR

Uses a throwaway database, data and cache folder; the PNGs are not committed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(out: Path) -> None:
    from screenshot_wait import screenshot_app, themed_window, throwaway_studio  # a sibling of this script

    work = throwaway_studio("autoglm-shots-")
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    app, wait = screenshot_app(out, patience_s=120.0)

    for theme in ("light", "dark"):
        window = themed_window(app, work, theme)
        window.start(None)
        wait(lambda: window.state.model is not None and window.runner.idle and window.dashboard is not None)

        def shot(name: str) -> None:
            window.grab().save(str(out / f"{name}_{theme}.png"))

        shot("model")
        window.show_page("Run settings")
        wait(lambda: True)
        shot("run_settings")

        window.state.update_run_settings(compare_seconds=0.5)
        page = window.optimize_page
        quantization = page.form.selector("quantization")
        quantization.setCurrentIndex(quantization.findData("auto"))
        window.show_page("Optimize")
        page.optimize_button.click()
        wait(lambda: window.runner.idle, 300)
        shot("optimize_auto")

        window.run_settings.duration.setValue(4.0)
        window.run_settings.threads.setValue(1)
        window.actions["run"].trigger()
        wait(lambda: not window.state.jobs.is_running("run") or len(window.dashboard.feed.samples) > 2000, 60)
        shot("dashboard_running")
        wait(lambda: window.runner.idle, 60)
        window.run_settings.duration.setValue(1.0)
        window.actions["run"].trigger()
        wait(lambda: window.runner.idle, 60)

        window.show_page("History")
        wait(lambda: window.history.table.rowCount() >= 2)
        shot("history")
        window.history.table.selectAll()
        window.actions["compare"].trigger()
        wait(lambda: window.compare_page.view is not None and window.runner.idle)
        shot("compare")

        from engine.generative.random_models import build_random_causal_lm

        llama = build_random_causal_lm(work / f"llama-{theme}", preset="tiny", family="llama")
        page = window.generate_page
        page.folder.setText(str(llama))
        page.prompt_tokens.setValue(32)
        page.new_tokens.setValue(24)
        window.show_page("Generate")
        page.run_button.click()
        wait(lambda: window.runner.idle, 120)
        shot("generate")

        window.show_page("Sweep")
        wait(lambda: True)
        shot("sweep_empty")

        broken = work / "broken.onnx"
        broken.write_bytes(os.urandom(256))
        QFileDialog.getOpenFileName = lambda *args, **kwargs: (str(broken), "")
        window.actions["open"].trigger()
        wait(lambda: any(isinstance(w, QMessageBox) and w.isVisible() for w in app.topLevelWidgets()))
        dialog = next(w for w in app.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible())
        dialog.grab().save(str(out / f"error_dialog_{theme}.png"))
        dialog.close()
        window.close()
        window.deleteLater()
        app.processEvents()
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots"))
