"""Where the database lives: argument, $AUTOGLM_STUDIO_DB, the platform data folder; and what storage imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from storage import default_database_path, open_database, resolve_database_url

REPO = Path(__file__).resolve().parents[2]


def test_the_default_database_is_studio_db_in_the_user_data_folder(monkeypatch, tmp_path: Path):
    # setup
    monkeypatch.delenv("AUTOGLM_STUDIO_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))

    # execute
    url = resolve_database_url(None)

    # assert
    assert default_database_path() == tmp_path / "data-home" / "autoglm-studio" / "studio.db"
    assert url.get_backend_name() == "sqlite" and url.database == str(default_database_path())


def test_opening_without_a_url_creates_the_default_database(monkeypatch, tmp_path: Path):
    # setup
    monkeypatch.delenv("AUTOGLM_STUDIO_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))

    # execute
    with open_database() as database:
        path = database.sqlite_path

    # assert
    assert path == tmp_path / "autoglm-studio" / "studio.db" and path.exists()


def test_the_environment_variable_overrides_the_default_and_the_argument_overrides_both(monkeypatch,
                                                                                      tmp_path: Path):
    # setup
    monkeypatch.setenv("AUTOGLM_STUDIO_DB", f"sqlite:///{tmp_path}/from-env.db")

    # execute / assert
    assert resolve_database_url(None).database == f"{tmp_path}/from-env.db"
    assert resolve_database_url(str(tmp_path / "plain-path.db")).database == str(tmp_path / "plain-path.db")


@pytest.mark.parametrize("url", ["postgresql://alice@db.example/studio", "postgres://alice@db.example/studio"])
def test_postgresql_urls_use_psycopg_3(url: str):
    resolved = resolve_database_url(url)
    assert resolved.drivername == "postgresql+psycopg" and resolved.host == "db.example"


def test_importing_storage_loads_neither_the_other_packages_nor_qt_nor_scipy():
    # execute
    probe = ("import sys, storage; print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
             "{'engine', 'profilers', 'studio', 'PySide6', 'pyqtgraph', 'scipy', 'torch'})))")
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)

    # assert
    assert loaded.stdout.strip() == ""
