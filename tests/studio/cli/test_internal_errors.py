"""A bug of ours (an exception no error boundary expects) is still one line, exit 1, and its traceback is kept in
a log file whose path the line gives (issue 14)."""

from studio import usecases
from studio.cli.main import main


def test_an_internal_error_is_one_line_with_the_path_of_its_traceback(tmp_path, monkeypatch, capsys):
    # setup
    def broken(*args, **kwargs):
        return 1 / 0

    monkeypatch.setattr(usecases, "list_runs", broken)
    monkeypatch.setenv("AUTOGLM_STUDIO_LOGS", str(tmp_path / "logs"))

    # execute
    code = main(["runs", "list", "--db", str(tmp_path / "runs.db")])

    # assert
    err = capsys.readouterr().err
    [log] = (tmp_path / "logs").iterdir()
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "internal error: ZeroDivisionError: division by zero" in err and str(log) in err
    assert "Traceback" in log.read_text() and "return 1 / 0" in log.read_text()
