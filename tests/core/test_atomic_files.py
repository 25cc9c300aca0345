import pytest

from core.atomic_files import write_bytes_atomically, write_text_atomically


def test_a_written_file_appears_whole(tmp_path):
    # setup
    target = tmp_path / "out.txt"
    # execute
    write_text_atomically(target, "hello")
    # assert
    assert target.read_text() == "hello" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    # setup
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def fail_half_way(stream):
        stream.write(b"new but")
        raise OSError(28, "No space left on device")

    # execute
    with pytest.raises(OSError, match="No space"):
        write_bytes_atomically(target, fail_half_way)
    # assert
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_new_file_gets_the_umask_s_permissions_and_a_replaced_one_keeps_its_own(tmp_path):
    # setup
    import os
    import stat

    from core import atomic_files

    new, kept = tmp_path / "report.html", tmp_path / "private.txt"
    kept.write_text("old")
    os.chmod(kept, 0o600)

    # execute
    write_text_atomically(new, "<html>")
    write_text_atomically(kept, "new")

    # assert: not mkstemp's 0600 for a new report (others may read it as they read any file the user writes)
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~atomic_files._UMASK
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
