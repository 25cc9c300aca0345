"""User code that exits or raises what no one expects (sys.exit, its own BaseException) ends the command with one
line and exit 2, never exit 0 with no output, its own exit status, or a traceback (issue 14)."""

import textwrap

import pytest

from studio.cli.main import main

MODEL = """
import sys
import torch

class Stop(BaseException):
    pass

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        {forward}
        return self.fc(x)

def build():
    {factory}
    return Net()
"""


@pytest.mark.parametrize(("factory", "forward", "message"), [
    ("sys.exit(0)", "pass", "build raised SystemExit: 0"),
    ("raise Stop('factory says stop')", "pass", "build raised Stop: factory says stop"),
    ("pass", "sys.exit(7)", "the model's forward raised SystemExit: 7"),
    ("pass", "raise Stop('forward says stop')", "the model's forward raised Stop: forward says stop"),
    ("pass", "raise ZeroDivisionError('bad maths')", "the model's forward raised ZeroDivisionError: bad maths"),
])
def test_user_code_that_exits_or_raises_ends_with_one_line_and_exit_2(tmp_path, capsys, factory, forward, message):
    # setup
    source = tmp_path / "model.py"
    source.write_text(textwrap.dedent(MODEL).replace("{factory}", factory).replace("{forward}", forward))

    # execute
    code = main(["bench", f"{source}:build", "--shape", "x=1x4", "--iterations", "5", "--duration", "0",
                 "--warmup", "1", "--no-save"])

    # assert
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
