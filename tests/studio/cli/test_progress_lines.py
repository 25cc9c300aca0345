"""Progress reaches a log or a pipe as lines: on each stage change and at the end, at most one a few seconds else."""

from studio.cli.options import ProgressLines, progress_bar


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_goes_to_stderr_as_rate_limited_lines_when_it_is_not_a_terminal(capsys):
    # setup
    clock = FakeClock()
    show = ProgressLines(interval_s=5.0, clock=clock)

    # execute
    show(0.0, "ONNX clean-up: starting")  # the first seconds stay quiet
    clock.now += 6
    show(0.1, "ONNX clean-up: upgrading opset")
    clock.now += 1
    show(0.15, "ONNX clean-up: saving")  # same stage, too soon: left out
    clock.now += 1
    show(0.2, "auto quantization: quant_pre_process")  # a new stage
    clock.now += 2
    show(0.3, "auto quantization: dynamic_int8_per_tensor: meets the budget")  # too soon
    clock.now += 5
    show(0.5, "auto quantization: timing fp32 (round 1/3)")  # due
    clock.now += 70
    show(1.0, "done")

    # assert
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "[ 10%     6s] ONNX clean-up: upgrading opset",
        "[ 20%     8s] auto quantization: quant_pre_process",
        "[ 50%    15s] auto quantization: timing fp32 (round 1/3)",
        "[100%  1m25s] done",
    ]


def test_the_cli_progress_prints_lines_when_stderr_is_captured(capsys, monkeypatch):
    # setup: pytest's captured stderr is not a terminal
    clock = FakeClock()
    monkeypatch.setattr("studio.cli.options.time.monotonic", clock)
    show = progress_bar()

    # execute
    clock.now += 30
    show(0.5, "bench: warm-up")

    # assert
    assert capsys.readouterr().err == "[ 50%    30s] bench: warm-up\n"
