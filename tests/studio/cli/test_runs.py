import json
import os
import textwrap

import pytest

from engine.device import discovery as devices
from storage import DatabaseFullError, RunWriter
from studio.cli.main import main
from tests.conftest import SAMPLE_CNN

FAST = ["--warmup", "1", "--iterations", "30", "--duration", "0", "--telemetry-hz", "20"]


@pytest.fixture(autouse=True)
def cpu_only_machine(monkeypatch):
    monkeypatch.setattr(devices, "nvml_gpus", lambda: ([], None, "no NVIDIA driver"))


def _bench(capsys, *extra) -> dict:
    assert main(["bench", str(SAMPLE_CNN), "--json", *FAST, *extra]) == 0
    return json.loads(capsys.readouterr().out)


def _json(capsys, argv) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_bench_saves_its_run_with_every_sample(capsys):
    # execute
    document = _bench(capsys, "--tag", "baseline", "--notes", "first try")
    shown = _json(capsys, ["runs", "show", str(document["run_id"])])
    listed = _json(capsys, ["runs", "list", "--tag", "baseline"])
    # assert
    assert document["run_id"] == 1
    assert shown["status"] == "completed" and shown["latency_samples"] == document["samples"]
    assert shown["summary"]["latency_ms"] == document["latency_ms"]
    assert shown["tags"] == ["baseline"] and shown["notes"] == "first try"
    assert shown["environment"]["cpu"]["logical_cores"] >= 1
    assert any(e["unavailable_reason"] for e in shown["energy"])
    assert [run["id"] for run in listed["runs"]] == [1] and listed["total"] == 1


def test_no_save_leaves_the_database_alone(capsys):
    assert _bench(capsys, "--no-save")["run_id"] is None
    assert _json(capsys, ["runs", "list"])["total"] == 0


def test_compare_export_and_delete(tmp_path, capsys):
    first, second = _bench(capsys)["run_id"], _bench(capsys)["run_id"]

    comparison = _json(capsys, ["runs", "compare", str(first), str(second)])
    assert [run["run_id"] for run in comparison["runs"]] == [first, second]
    pair = comparison["pairs"][0]
    assert pair["ci_low"] <= pair["median_ratio"] <= pair["ci_high"]
    assert pair["verdict"] in (None, "faster", "slower")

    assert main(["runs", "compare", str(first), str(second)]) == 0
    assert "p99_ms" in capsys.readouterr().out

    target = tmp_path / "run.csv"
    assert main(["runs", "export", str(first), "--format", "csv", "-o", str(target)]) == 0
    assert target.read_text().startswith("kind,timestamp_ns,metric,device,value,batch")

    assert main(["runs", "delete", str(first)]) == 0
    capsys.readouterr()
    assert main(["runs", "show", str(first)]) == 2
    assert f"no run {first}" in capsys.readouterr().err


def test_compare_needs_two_runs(capsys):
    only = _bench(capsys)["run_id"]
    assert main(["runs", "compare", str(only)]) == 2
    assert "between 2 and 8 runs" in capsys.readouterr().err


def test_a_failing_model_is_saved_as_failed(tmp_path, capsys):
    source = tmp_path / "fails.py"
    source.write_text(textwrap.dedent("""
        import torch
        class Fails(torch.nn.Module):
            def forward(self, x):
                raise RuntimeError("kernel exploded")
        def make():
            return Fails()
    """))
    assert main(["bench", f"{source}:make", "--shape", "x=1x4", *FAST]) == 2
    assert "kernel exploded" in capsys.readouterr().err
    runs = _json(capsys, ["runs", "list", "--status", "failed"])["runs"]
    assert len(runs) == 1 and "kernel exploded" in runs[0]["error"]


def test_corrupt_database_is_reported_and_moved_aside_not_deleted(tmp_path, capsys):
    database = tmp_path / "studio.db"
    garbage = os.urandom(8192)
    database.write_bytes(garbage)

    assert main(["bench", str(SAMPLE_CNN), "--db", str(database), *FAST]) == 2
    err = capsys.readouterr().err
    assert "damaged or is not a database" in err and f"autoglm-studio db move-aside --db {database}`" in err
    assert database.read_bytes() == garbage

    assert main(["db", "move-aside", "--db", str(database)]) == 0
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("studio.db.corrupt-")]
    assert len(moved) == 1 and moved[0].read_bytes() == garbage and not database.exists()
    capsys.readouterr()
    assert _bench(capsys, "--db", str(database))["run_id"] == 1


def test_samples_survive_a_full_disk_at_save_time(monkeypatch, capsys):
    def full(self):
        raise DatabaseFullError("The disk holding the database is full.")

    saving = RunWriter.retry_save
    monkeypatch.setattr(RunWriter, "retry_save", full)
    assert main(["bench", str(SAMPLE_CNN), "--json", *FAST]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["samples"] >= 30  # the measured result is still shown
    assert "measured but not saved: The disk holding the database is full" in captured.err
    assert "kept in memory" not in captured.err  # the process is ending: nothing stays in memory
    kept = captured.err.split("written to ")[1].split(": save it later")[0]
    assert json.loads(open(kept).read())["latency"]
    monkeypatch.setattr(RunWriter, "retry_save", saving)  # the disk has room again
    assert main(["db", "import-unsaved", kept]) == 0
    assert "(completed, 30 latency samples)" in capsys.readouterr().out
    [run] = [run for run in _json(capsys, ["runs", "list"])["runs"] if "imported from" in run["notes"]]
    assert run["status"] == "completed" and run["latency_count"] == 30
    os.unlink(kept)


@pytest.mark.parametrize(("content", "message"), [
    ('{"format": "something else"}', "not a run exported by the studio"),
    ('{"format": "autoglm-studio-run", "version": 99, "run": {}, "latency": {}}', "export format version 99"),
    ('{"format": "autoglm-studio-run", "version": 1, "run": {"status": "completed"}, "latency": {}}',
     "not a complete run export"),
    ("[" * 1000, "nested deeper than"),
])
def test_importing_a_file_that_is_not_a_run_export_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "run.json"
    path.write_text(content)
    assert main(["db", "import-unsaved", str(path), "--db", str(tmp_path / "runs.db")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["runs", "show", "99"], "no run 99"),
    (["runs", "list", "--since", "yesterday"], "expected a day as YYYY-MM-DD"),
    (["runs", "list", "--db", "postgresql://nobody@127.0.0.1:1/none"], "Connection refused"),
    (["runs", "list", "--db", "postgresql://nobody@127.0.0.1:99999/none"], 'invalid port number: "99999"'),
])
def test_bad_runs_requests(capsys, argv, message):
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err


def test_a_healthy_database_is_never_moved_aside(tmp_path, capsys):
    # setup
    database = tmp_path / "studio.db"
    run_id = _bench(capsys, "--db", str(database))["run_id"]

    # execute
    code = main(["db", "move-aside", "--db", str(database)])

    # assert: refused, nothing renamed, the run still there
    assert code == 2 and "passes SQLite's integrity check: it is not damaged" in capsys.readouterr().err
    assert not [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert [run["id"] for run in _json(capsys, ["runs", "list", "--db", str(database)])["runs"]] == [run_id]


@pytest.mark.parametrize(("argv", "message"), [
    (["runs", "list", "--offset", "-5"], "the offset must be 0 or more"),
    (["runs", "list", "--limit", "-1"], "the limit 1 to 1000"),
    (["runs", "compare", "1", "1"], "each run can appear only once in a comparison"),
    (["runs", "show", "12345678901234567890123"], "There is no run 12345678901234567890123"),
    (["runs", "delete", "0"], "There is no run 0"),
])
def test_impossible_run_requests_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    # setup
    database = tmp_path / "studio.db"
    _bench(capsys, "--db", str(database))

    # execute
    code = main([*argv, "--db", str(database)])

    # assert
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_damaged_row_stays_local_and_the_other_runs_stay_usable(tmp_path, capsys):
    # setup: two runs; the first's summary is garbled, the second's samples are damaged
    import sqlite3

    database = tmp_path / "studio.db"
    first, second = (_bench(capsys, "--db", str(database))["run_id"] for _ in range(2))
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE runs SET summary = '{broken' WHERE id = ?", (first,))
        connection.execute("UPDATE latency_chunks SET latencies = x'00112233' WHERE run_id = ?", (second,))

    # execute / assert: both listed, the damaged one marked with why
    assert main(["runs", "list", "--db", str(database)]) == 0
    out = capsys.readouterr().out
    assert "completed (damaged)" in out and f"run {first} is damaged: summary not valid JSON" in out
    assert main(["runs", "show", str(first), "--db", str(database)]) == 0
    assert "damaged     summary not valid JSON" in capsys.readouterr().out
    # execute / assert: the run whose samples are damaged is one line; the other still compares and exports
    assert main(["runs", "show", str(second), "--db", str(database)]) == 2
    assert "a chunk of samples is damaged" in capsys.readouterr().err
    assert main(["runs", "export", str(first), "--format", "csv", "-o", str(tmp_path / "first.csv"),
                 "--db", str(database)]) == 0


def test_a_database_that_cannot_be_written_opens_read_only(tmp_path, capsys, monkeypatch):
    # setup: a saved run, then the file becomes unwritable (as permissions, a read-only mount or chattr +i make it)
    import builtins

    from storage import connection

    database = tmp_path / "studio.db"
    run_id = _bench(capsys, "--db", str(database))["run_id"]
    real_open = builtins.open

    def refusing(file, mode="r", *args, **kwargs):
        if str(file) == str(database) and "+" in mode:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing)
    assert connection._read_only_file(database)

    # execute / assert: listing, showing and exporting work; saving says why it cannot
    assert [run["id"] for run in _json(capsys, ["runs", "list", "--db", str(database)])["runs"]] == [run_id]
    assert main(["runs", "export", str(run_id), "--format", "csv", "-o", str(tmp_path / "r.csv"),
                 "--db", str(database)]) == 0
    assert "the database is read-only, so the export is not recorded" in capsys.readouterr().out
    assert main(["bench", str(SAMPLE_CNN), "--db", str(database), *FAST]) == 2
    assert "cannot be written" in capsys.readouterr().err
