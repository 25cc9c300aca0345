"""Fixtures for the storage tests: a SQLite file in tmp_path, or a fresh database on a real PostgreSQL server.

`database_url` is parametrized over both backends, so every repository test runs on each. The PostgreSQL server
(initdb + pg_ctl into a private /tmp folder, unix socket only, so parallel sessions never fight over a port)
starts once per session on first use. initdb refuses root, so under root the cluster runs as the `postgres`
account through runuser. If the server cannot start, the tests using it fail with the server log: a missing
server is a broken test environment, not a reason to skip.

Helpers are fixtures rather than importable functions because pytest imports this file under a package-style
name that test modules cannot rely on.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import pytest

from storage import Database, ModelInfo, RunStart, open_database

SERVER_USER = "studio"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = start_postgres_server()
    except PostgresUnavailable as error:
        pytest.fail(f"Could not start the PostgreSQL test server: {error}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    name = f"studio_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.admin_conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.url(name)
    with psycopg.connect(postgres_server.admin_conninfo, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "studio.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, sqlite_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{sqlite_path}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(database_url, busy_timeout_s=0.2)
    yield database
    database.close()


@pytest.fixture
def register_model() -> Callable[..., int]:
    def register(database: Database, name: str = "net.onnx") -> int:
        digest = uuid.uuid5(uuid.NAMESPACE_URL, name).hex * 2
        return database.catalog.register_model(
            ModelInfo(path=f"/models/{name}", sha256=digest, format="onnx", size_bytes=1234,
                      io_signature={"inputs": [{"name": "x", "shape": ["batch", 4]}]}))

    return register


@pytest.fixture
def run_start() -> Callable[..., RunStart]:
    def make(model_id: int, **overrides: object) -> RunStart:
        values: dict[str, object] = {"device": "cpu", "backend": "onnxruntime", "model_id": model_id,
                                     "provider": "CPUExecutionProvider", "settings": {"batch": 1},
                                     "environment": {"cpu": {"model": "Test CPU"}, "packages": {"numpy": "2"}}}
        values.update(overrides)
        return RunStart(**values)  # type: ignore[arg-type]

    return make


@pytest.fixture
def latency_samples() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    def make(count: int, *, median_ns: int = 1_000_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Back-to-back iterations with log-normal latencies around `median_ns` (seeded)."""
        rng = np.random.default_rng(seed)
        latencies = (median_ns * rng.lognormal(0.0, 0.1, count)).astype(np.int64)
        starts = 1_000_000_000 + np.concatenate([[0], np.cumsum(latencies[:-1] + 1_000)])
        return starts.astype(np.int64), latencies

    return make


# ---- a throw-away PostgreSQL server ----------------------------------------------------------------------------


class PostgresUnavailable(RuntimeError):
    pass


@dataclass
class PostgresServer:
    bindir: Path
    base: Path
    run_as: str | None

    @property
    def admin_conninfo(self) -> str:
        return f"host={self.base} user={SERVER_USER} dbname=postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SERVER_USER}@/{database}?host={self.base}"

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(self.run_as, [str(self.bindir / "pg_ctl"), "-D", str(self.base / "data"), *args], check=check)

    def stop(self) -> None:
        self.pg_ctl("stop", "-m", "fast", "-w", check=False)
        shutil.rmtree(self.base, ignore_errors=True)


def start_postgres_server() -> PostgresServer:
    bindir = _find_bindir()
    run_as = _unprivileged_account() if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="studio-pg-", dir="/tmp"))  # short: socket paths are limited to ~100 chars
    if run_as:
        account = pwd.getpwnam(run_as)
        os.chown(base, account.pw_uid, account.pw_gid)
    server = PostgresServer(bindir, base, run_as)
    log = base / "server.log"
    try:
        _run(run_as, [str(bindir / "initdb"), "-D", str(base / "data"), "-A", "trust", "-U", SERVER_USER,
                      "-E", "UTF8", "--no-sync", "--no-instructions"])
        options = (f"-c listen_addresses='' -c unix_socket_directories={base} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
        server.pg_ctl("start", "-w", "-t", "30", "-l", str(log), "-o", options)
    except (PostgresUnavailable, OSError, subprocess.SubprocessError) as error:
        details = log.read_text(errors="replace")[-3000:] if log.exists() else "(no server log)"
        server.stop()
        raise PostgresUnavailable(f"{error}\nserver log:\n{details}") from None
    return server


def _find_bindir() -> Path:
    candidates = [os.environ.get("AUTOGLM_PG_BINDIR", "")]
    pg_config = shutil.which("pg_config")
    if pg_config:
        candidates.append(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found: install Debian's 'postgresql' package "
        "(make test does) or set AUTOGLM_PG_BINDIR.")


def _unprivileged_account() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and no 'postgres' or 'nobody' account exists to run initdb")


def _run(run_as: str | None, command: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    if run_as:
        command = ["runuser", "-u", run_as, "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd="/")
    if check and result.returncode != 0:
        raise PostgresUnavailable(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n"
                                  f"{result.stderr}")
    return result


def _version_key(path: str) -> float:
    try:
        return float(Path(path).parent.name)
    except ValueError:
        return 0.0
