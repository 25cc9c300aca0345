"""Numbers are parsed strictly and bounded before anything is allocated or started: each bad one is one line and
exit 2 (issue 14)."""

import pytest

from studio.cli.main import main
from tests.conftest import SAMPLE_TRANSFORMER

FAST = ["--iterations", "5", "--duration", "0", "--warmup", "1", "--no-save", "--telemetry-hz", "0"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--batch", "1000000", "--dim", "sequence=100000"], "GiB, more than half of the"),
    (["--dim", "sequence=" + "9" * 30], "bad size '999999999999999999999999999999'"),
    (["--dim", "sequence=1²"], "bad size '1²'"),
    (["--shape", "input_ids=1x１２", "--shape", "attention_mask=1x12"], "bad dims '1x１２'"),
    (["--seed", "-1"], "the seed must be 0 or more, got -1"),
    (["--threads", "100000"], "threads must be 1 to"),
])
def test_a_bad_number_is_one_line_and_exit_2(capsys, extra, message):
    # execute
    code = main(["bench", str(SAMPLE_TRANSFORMER), *FAST, *extra])

    # assert
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("extra", "message"), [
    (["--idle-baseline", "nan"], "argument --idle-baseline: 'nan' is not a finite number"),
    (["--duration", "inf"], "argument --duration: 'inf' is not a finite number"),
])
def test_nan_and_inf_are_refused_as_numbers(capsys, extra, message):
    with pytest.raises(SystemExit) as stopped:
        main(["bench", str(SAMPLE_TRANSFORMER), *extra])
    assert stopped.value.code == 2 and message in capsys.readouterr().err


def test_an_unknown_provider_option_is_named_not_ignored(capsys):
    code = main(["bench", str(SAMPLE_TRANSFORMER), *FAST, "--provider-option", "cudnn_conv_algo_serch=HEURISTIC"])
    err = capsys.readouterr().err
    assert code == 2 and "CPUExecutionProvider has no option cudnn_conv_algo_serch (it takes: arena_extend_strategy)" in err
