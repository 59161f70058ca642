"""Databases for the sql: dataset tests: real SQLite and DuckDB files, and a real PostgreSQL
server started for the session.

The server is a throwaway cluster (``initdb`` + ``pg_ctl``) in a temporary folder, listening on
a Unix socket there (administration, trusted) and on 127.0.0.1 at a free port (the tests'
connections, password checked with SCRAM); run as the ``postgres`` user when the tests run as
root, since the server refuses root. Its start is bounded, and it is stopped at the end.
Debian's ``postgresql`` package provides it (``bash .ci/postgres-setup.sh``); without it, or
without the ``sql`` extra, the tests are skipped with the reason, and fail instead under
``MLTRAINER_REQUIRE_EXTRAS=1``. Import ``postgres_server`` into the test module; tests take
the fixture as ``postgres``.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import free_port

from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings

# What the server checks, and (URL_PASSWORD) how it stands in the URL: p%40ss%3Aword-...; long,
# so that a scan for any part of it cannot match by chance.
PASSWORD = "p@ss:word-Zx81QmWt5LrK0vBn3YhJ7cDe2FgA9sTu"
URL_PASSWORD = urllib.parse.quote(PASSWORD, safe="")
OTHER_PASSWORD = "other-pass-9876"
START_S = 120  # the machine is shared and loaded: generous, but bounded
EXTRA_MODULES = ("sqlalchemy", "sqlglot", "duckdb", "duckdb_engine", "psycopg")


def missing(reason: str) -> None:
    """Skip with ``reason``, or fail when the extras are required (CI)."""
    if os.environ.get("MLTRAINER_REQUIRE_EXTRAS") == "1":
        pytest.fail(f"MLTRAINER_REQUIRE_EXTRAS=1 but {reason}")
    pytest.skip(reason, allow_module_level=True)


def require_sql_extra() -> None:
    absent = [m for m in EXTRA_MODULES if importlib.util.find_spec(m) is None]
    if absent:
        missing(f"the 'sql' extra is not installed ({', '.join(absent)}): pip install -e '.[sql]'")


def store_secret(settings: Settings, name: str, url: str, hosts: list[str] | None = None) -> None:
    """Register ``name`` as the person would (``mltrainer secrets set NAME``)."""
    SecretVault.for_settings(settings, {}).set(name, url, hosts)


# -- SQLite and DuckDB ---------------------------------------------------------------------
def classification_rows(rows: int = 400, seed: int = 0) -> list[tuple[float, float, str, str]]:
    """The rows of conftest's churn CSV: x1, x2, colour, label (yes/no)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    colour = rng.choice(["red", "green", "blue"], size=rows)
    signal = x1 + 0.5 * x2 + (colour == "red") + rng.normal(scale=0.5, size=rows)
    label = np.where(signal > 0.3, "yes", "no")
    return [
        (float(a), float(b), str(c), str(d))
        for a, b, c, d in zip(x1, x2, colour, label, strict=True)
    ]


CREATE_CUSTOMERS = (
    "CREATE TABLE customers (x1 DOUBLE PRECISION, x2 DOUBLE PRECISION, colour TEXT, label TEXT)"
)


def sqlite_db(path: Path, rows: int = 400) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute(CREATE_CUSTOMERS)
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", classification_rows(rows))
        conn.execute("CREATE TABLE notes (id INTEGER, body TEXT)")
        conn.execute("INSERT INTO notes VALUES (1, 'keep me')")
    return path


def duckdb_db(path: Path, rows: int = 400) -> Path:
    import duckdb

    with duckdb.connect(str(path)) as conn:
        conn.execute(CREATE_CUSTOMERS)
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", classification_rows(rows))
        conn.execute("CREATE TABLE notes (id INTEGER, body TEXT)")
        conn.execute("INSERT INTO notes VALUES (1, 'keep me')")
    return path


# -- PostgreSQL ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Postgres:
    socket_dir: Path
    port: int

    def url(self, user: str = "mlt", password: str = URL_PASSWORD, db: str = "mlt") -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{db}"

    def admin(self, *statements: str, db: str = "mlt") -> list[tuple[object, ...]]:
        """Run ``statements`` as the superuser over the socket; the last one's rows."""
        import psycopg

        rows: list[tuple[object, ...]] = []
        with psycopg.connect(
            host=str(self.socket_dir), port=self.port, user="postgres", dbname=db, autocommit=True
        ) as conn:
            for sql in statements:
                cursor = conn.execute(sql)  # type: ignore[arg-type]
                rows = cursor.fetchall() if cursor.description else []
        return rows


def pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version(path: str) -> tuple[int, ...]:
    part = Path(path).parent.parent.name
    return tuple(int(p) for p in part.split(".") if p.isdigit())


@pytest.fixture(scope="session", name="postgres")
def postgres_server() -> Iterator[Postgres]:
    require_sql_extra()
    bindir = pg_bindir()
    if bindir is None:
        missing("PostgreSQL is not installed (bash .ci/postgres-setup.sh installs it)")
        return
    runner: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="mlt-pg-"))
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder)
            missing("running as root and there is no 'postgres' user to run PostgreSQL as")
            return
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        runner = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    server_options = f"-k {folder} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off"

    def run(*command: str) -> None:
        done = subprocess.run(
            [*runner, *command], capture_output=True, text=True, timeout=START_S, check=False
        )
        if done.returncode != 0:
            log = folder / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{command[0]} failed: {done.stdout}{done.stderr}{tail}")

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions")  # fmt: skip
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w",
            "-t", str(START_S), "-o", server_options, "start")  # fmt: skip
        server = Postgres(folder, port)
        _prepare(server)
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*runner, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                 "-t", "60", "stop"],
                capture_output=True, timeout=90, check=False,
            )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def _prepare(server: Postgres) -> None:
    """Two users, a database of mlt's with the customers table, and a table mlt may not read."""
    server.admin(
        f"CREATE ROLE mlt LOGIN PASSWORD '{PASSWORD}'",
        f"CREATE ROLE other LOGIN PASSWORD '{OTHER_PASSWORD}'",
        "CREATE DATABASE mlt OWNER mlt",
        db="postgres",
    )
    import psycopg

    with psycopg.connect(server.url()) as conn:  # libpq decodes the password as a driver does
        conn.execute(CREATE_CUSTOMERS)  # type: ignore[arg-type]
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO customers VALUES (%s, %s, %s, %s)", classification_rows()
            )
        conn.execute("CREATE TABLE notes (id INTEGER, body TEXT)")
        conn.execute("INSERT INTO notes VALUES (1, 'keep me')")
        conn.execute("CREATE SEQUENCE counter")
    server.admin(
        "CREATE TABLE salaries (name TEXT, pay INTEGER)", "REVOKE ALL ON salaries FROM PUBLIC"
    )
