"""Screenshots of the Sweep page after a small real sweep of the sample CNN, and of the Layers view of a profiled run,
in light and dark themes, to look at before calling the work done.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/studio/ui/take_sweep_screenshots.py OUT_DIR

Uses a throwaway database, data and cache folder; the PNGs are not committed.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[3]
SAMPLE_CNN = REPO / "resources" / "models" / "sample_cnn.onnx"


def main(out: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="autoglm-sweep-shots-"))
    os.environ.update(AUTOGLM_STUDIO_DB=str(work / "studio.db"), AUTOGLM_STUDIO_DATA=str(work / "data"),
                      AUTOGLM_STUDIO_CACHE=str(work / "cache"))
    sys.path.insert(0, str(REPO))
    from PySide6.QtWidgets import QApplication, QMainWindow
    from screenshot_wait import wait_until  # a sibling of this script

    from engine.measure.runner import BenchmarkSettings
    from studio import usecases
    from studio.ui.job_runner import JobRunner
    from studio.ui.pages.layers_view import LayersView
    from studio.ui.pages.sweep_page import SweepPage
    from studio.ui.state import AppState
    from studio.ui.widgets.theme import apply_theme

    app = QApplication(sys.argv)
    app.setQuitOnLastWindowClosed(False)
    out.mkdir(parents=True, exist_ok=True)

    def wait(condition, seconds: float = 300.0) -> None:
        wait_until(app, condition, seconds)

    profiled = usecases.profile_model(usecases.BenchRequest(model=str(SAMPLE_CNN),
                                                            settings=BenchmarkSettings(5, 50, 0.2)))
    for theme in ("light", "dark"):
        apply_theme(app, theme)
        window = QMainWindow()
        state = AppState()
        runner = JobRunner(state.jobs, window)
        state.jobs.finished.connect(lambda job: job.error and print(f"{job.kind}: {job.error}\n{job.details}",
                                                                    file=sys.stderr))
        state.open(usecases.open_model(str(SAMPLE_CNN)))
        page = SweepPage(state, runner)
        window.setCentralWidget(page)
        window.resize(1280, 720)
        window.show()
        page.batches.setText("1,2,4,8")
        page.threads.setText("1,2")
        page.point_cap.setValue(0.5)
        page.latency_limit.setValue(2.0)
        page.run_button.click()
        wait(lambda: page.job is None)
        page.select_point(page.report.summaries[0].key)
        wait(lambda: True)
        window.grab().save(str(out / f"sweep_{theme}.png"))

        layers = LayersView(runner)
        window.setCentralWidget(layers)
        layers.show_run(profiled.bench.run_id)
        wait(lambda: layers.profile is not None)
        window.grab().save(str(out / f"layers_{theme}.png"))
        layers.show_profile(_fallback_example())
        wait(lambda: True)
        window.grab().save(str(out / f"layers_fallback_example_{theme}.png"))
        runner.shut_down(60)
        window.close()
        window.deleteLater()
        app.processEvents()
    print(f"screenshots in {out}")


def _fallback_example():
    """A hand-made profile (labelled as such) to see the fallback banner and bars, which a CPU-only machine cannot
    produce: two nodes ask for CUDA and run on the CPU."""
    from engine.profiling.layer_profile import NodeEvent, build_profile

    nodes = (("conv1", "Conv", "CUDAExecutionProvider", 40.0, 884_736), ("conv2", "Conv", "CUDAExecutionProvider", 35.0,
             4_718_592), ("reshape", "Reshape", "CPUExecutionProvider", 12.0, None),
             ("topk", "TopK", "CPUExecutionProvider", 9.0, None), ("fc", "Gemm", "CUDAExecutionProvider", 4.0, 1_280))
    events = [NodeEvent(name, op, provider, duration, run, macs=macs) for run in range(5)
              for name, op, provider, duration, macs in nodes]
    return build_profile(events, runtime="onnxruntime", model="hand-made example, not measured",
                         requested="CUDAExecutionProvider", batch_size=1, iterations=5, run_walls_ns=[110_000] * 5)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots"))
