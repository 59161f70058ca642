"""Connections to the database behind a ``sql:secret://NAME`` reference: read-only by
construction, cancelled at a deadline, failures turned into errors that say what to do.

The URL comes from the vault (``url_credential``: the host inside it must be one the secret is
bound to; ``scheme:///path``, a file database, counts as ``localhost``) and is never shown:
not in an error, a log line or a record. Every connection is opened for one operation and
closed after it (no pool).

Read-only, on every backend, whatever the query:
- SQLite: the file opened with ``mode=ro``, and while the query runs an authorizer that allows
  reading and calling functions only;
- DuckDB: ``read_only=True`` with external access (files, URLs, extensions) disabled and the
  configuration locked;
- PostgreSQL: ``default_transaction_read_only`` for the session and ``SET TRANSACTION READ
  ONLY`` for the transaction, with a ``statement_timeout``.
The only writable connection is the one ``sql_source.write_table`` opens to create a new table.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import NullPool

from mltrainer.state.destinations import is_loopback
from mltrainer.state.errors import (
    DatasetError,
    InvalidInput,
    MLTrainerError,
    NotFound,
    PermissionDenied,
    RemoteServiceError,
    SecretError,
)
from mltrainer.state.guard import PathPolicy
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.tools.datasets.sql_query import DIALECTS, FORBIDDEN_FUNCTIONS

EXTRA_HINT = "Install the optional 'sql' extra: pip install 'mltrainer-mcp[sql]'."
DRIVERS = {"sqlite": "sqlite3", "duckdb": "duckdb_engine", "postgresql": "psycopg"}
# Connection parameters a PostgreSQL URL may carry: none of them moves the connection to
# another host than the one the secret is bound to (``host`` only as a local socket folder).
PG_PARAMETERS = frozenset(
    {"sslmode", "sslrootcert", "sslcert", "sslkey", "application_name", "host",
     "target_session_attrs", "gssencmode", "channel_binding"}
)  # fmt: skip
DUCKDB_CONFIG = {
    "enable_external_access": False,  # no files, URLs or ATTACH, whatever the SQL says
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,  # and no SET to undo the above
}
SQLITE_READS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)


@dataclass(frozen=True)
class Database:
    """The database a secret names. ``url`` holds the password: it never leaves this module."""

    reference: str  # secret://NAME
    backend: str  # sqlite | duckdb | postgresql
    host: str  # host[:port]; localhost for a file
    path: Path | None  # the file of a SQLite or DuckDB database, once the path guard passed
    fingerprint: str  # the URL without its password, hashed: a changed secret is a new source
    url: URL = field(repr=False)
    secrets: tuple[str, ...] = field(repr=False)  # the URL and its password, to scrub messages


def resolve(reference: str, settings: Settings, vault: SecretVault) -> Database:
    """The database ``reference`` names, once the vault's host binding and the path guard
    passed; nothing is connected yet."""
    value = vault.url_credential(reference)
    try:
        url = make_url(value)
    except ArgumentError:
        raise SecretError(
            f"{reference} does not hold a database URL.",
            next_step="Ask the person to store a SQLAlchemy URL in it, e.g. "
            "postgresql://USER:PASSWORD@HOST:5432/DB, sqlite:///path/data.db or "
            "duckdb:///path/data.duckdb.",
        ) from None
    backend = url.get_backend_name()
    if backend not in DIALECTS:
        raise InvalidInput(
            f"{reference} is a {backend[:40]} database; sql: datasets read SQLite, DuckDB and "
            "PostgreSQL.",
            next_step="Export the table to a file and pass its path instead.",
        )
    _require(backend)
    secrets = tuple(s for s in (value, url.password) if s)
    path = None
    if backend == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
        _check_pg_parameters(reference, url)
    else:
        path = _database_file(reference, url, settings)
    identity = (
        f"{backend}|{url.username}|{url.host}|{url.port}|{url.database}|{sorted(url.query.items())}"
    )
    return Database(
        reference=reference,
        backend=backend,
        host=f"{url.host}:{url.port}" if url.port else (url.host or "localhost"),
        path=path,
        fingerprint=hashlib.sha256(identity.encode()).hexdigest()[:16],
        url=url,
        secrets=secrets,
    )


def _require(backend: str) -> None:
    for module in ("sqlglot", DRIVERS[backend]):
        if importlib.util.find_spec(module) is None:
            raise DatasetError(
                f"Reading a {backend} database needs the Python package '{module}'.",
                next_step=EXTRA_HINT,
            )


def _check_pg_parameters(reference: str, url: URL) -> None:
    unknown = sorted(set(url.query) - PG_PARAMETERS)
    socket = url.query.get("host")
    if unknown or (
        socket is not None
        and not (isinstance(socket, str) and socket.startswith("/") and is_loopback(url.host or ""))
    ):
        what = ", ".join(unknown) if unknown else "host (other than a local socket folder)"
        raise SecretError(
            f"The URL in {reference} has connection parameters this server does not pass on: "
            f"{what}.",
            next_step="Ask the person to store the URL without them; a local socket is written "
            "postgresql://USER:PASSWORD@localhost/DB?host=/var/run/postgresql.",
        )


def _database_file(reference: str, url: URL, settings: Settings) -> Path:
    if url.query or not url.database or url.database.startswith(":memory:"):
        raise SecretError(
            f"{reference} must name a database file, with no parameters.",
            next_step="Store it as sqlite:///path/to/data.db or duckdb:///path/to/data.duckdb.",
        )
    return PathPolicy(settings).check(url.database, shown=f"the database file of {reference}")


# -- sessions ----------------------------------------------------------------------------
class QueryDeadline:
    """The overall deadline of one operation: connecting, then a timer that cancels the
    running statement (``cancel``) when it passes."""

    def __init__(self, seconds: float, database: Database) -> None:
        self.seconds, self.database = seconds, database
        self.ends = time.monotonic() + seconds
        self.fired = threading.Event()
        self._timer: threading.Timer | None = None

    def remaining(self) -> float:
        return max(self.ends - time.monotonic(), 0.0)

    def arm(self, cancel: Callable[[], None]) -> None:
        def fire() -> None:
            self.fired.set()
            cancel()

        self._timer = threading.Timer(self.remaining(), fire)
        self._timer.daemon = True
        self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def check(self) -> None:
        if self.fired.is_set() or self.remaining() <= 0:
            raise self.error()

    def error(self) -> RemoteServiceError:
        return RemoteServiceError(
            f"The database of {self.database.reference} did not finish within "
            f"{self.seconds:g} s (MLTRAINER_SQL_TIMEOUT_S); the query was cancelled and nothing "
            "was kept.",
            next_step="Select fewer rows or columns (a WHERE, a LIMIT), or have the person raise "
            "MLTRAINER_SQL_TIMEOUT_S.",
        )


@dataclass
class Session:
    """One connection inside one transaction, with its deadline."""

    database: Database
    conn: Connection
    deadline: QueryDeadline

    def stream(self, sql: str, chunk_rows: int) -> CursorResult[Any]:
        """Run ``sql`` (already checked) with its rows streamed, not fetched at once."""
        if self.database.backend == "sqlite":
            dbapi = self.conn.connection.dbapi_connection
            assert isinstance(dbapi, sqlite3.Connection)
            dbapi.set_authorizer(_sqlite_reads_only)
        options = {"stream_results": True, "max_row_buffer": chunk_rows, "no_parameters": True}
        return self.conn.execution_options(**options).exec_driver_sql(sql)


@contextmanager
def session(database: Database, settings: Settings, *, read_only: bool) -> Iterator[Session]:
    """A connection in a transaction (read-only unless ``read_only`` is False), cancelled at
    ``sql_timeout_s``; driver errors come out as the project's errors."""
    deadline = QueryDeadline(settings.sql_timeout_s, database)
    engine = _engine(database, deadline, read_only=read_only)
    try:
        try:
            conn = engine.connect()
        except DBAPIError as exc:
            raise connect_error(exc, database) from None
        with conn:
            deadline.arm(_canceller(conn, database.backend))
            try:
                with conn.begin():
                    if database.backend == "postgresql" and read_only:
                        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                    yield Session(database, conn, deadline)
            except DBAPIError as exc:
                raise query_error(exc, database, deadline) from None
            finally:
                deadline.disarm()
    finally:
        engine.dispose()


def _engine(database: Database, deadline: QueryDeadline, *, read_only: bool) -> Engine:
    if database.backend == "sqlite":
        assert database.path is not None
        uri = database.path.as_uri() + ("?mode=ro" if read_only else "?mode=rw")

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(uri, uri=True, check_same_thread=False)

        return create_engine("sqlite://", creator=connect, poolclass=NullPool)
    if database.backend == "duckdb":
        url = URL.create("duckdb", database=str(database.path))
        config = {"read_only": read_only, "config": dict(DUCKDB_CONFIG)}
        return create_engine(url, connect_args=config, poolclass=NullPool)
    seconds = max(1, math.ceil(deadline.remaining()))
    options = f"-c statement_timeout={seconds * 1000}"
    if read_only:
        options += " -c default_transaction_read_only=on"
    arguments = {"connect_timeout": max(2, min(seconds, 30)), "options": options}
    return create_engine(database.url, connect_args=arguments, poolclass=NullPool)


def _canceller(conn: Connection, backend: str) -> Callable[[], None]:
    """Stops the statement running on ``conn`` from another thread."""
    dbapi = conn.connection.dbapi_connection

    def cancel() -> None:
        if backend == "postgresql":
            import psycopg

            with suppress(psycopg.Error):
                dbapi.cancel_safe()  # type: ignore[union-attr]
        elif backend == "sqlite":
            with suppress(sqlite3.Error):
                dbapi.interrupt()  # type: ignore[union-attr]
        else:
            import duckdb

            with suppress(duckdb.Error):
                dbapi.interrupt()  # type: ignore[union-attr]

    return cancel


def _sqlite_reads_only(action: int, arg1: str | None, arg2: str | None, *_: object) -> int:
    if action not in SQLITE_READS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in FORBIDDEN_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


# -- errors ------------------------------------------------------------------------------
def detail(exc: BaseException, database: Database) -> str:
    """The driver's own first line, without the URL or password, shortened."""
    orig = getattr(exc, "orig", None) or exc
    text = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    for secret in database.secrets:
        text = text.replace(secret, "***")
    return text.removeprefix("connection failed: ")[:300]


def connect_error(exc: DBAPIError, database: Database) -> MLTrainerError:
    said = detail(exc, database)
    lowered, ref = said.lower(), database.reference
    if "password" in lowered or "authentication" in lowered or "role" in lowered:
        return PermissionDenied(
            f"The database at {database.host} refused the user name or password in {ref}.",
            next_step="Ask the person to store the right database URL again (set_secret, or "
            "'mltrainer secrets set NAME'); the password never goes through this conversation.",
        )
    if "database" in lowered and "does not exist" in lowered:
        return NotFound(
            f"The database named in {ref} does not exist at {database.host}.",
            next_step="Ask the person to correct the database name in the URL.",
        )
    if database.backend != "postgresql":
        return DatasetError(
            f"Could not open the database file of {ref}: {said}.",
            next_step="Check that it is a database of the kind its URL names and that no other "
            "program holds it open for writing.",
        )
    return RemoteServiceError(
        f"Could not reach the database of {ref} at {database.host}: {said}.",
        next_step="Check that the database server runs and accepts connections from this "
        "machine, then try again.",
    )


def query_error(exc: DBAPIError, database: Database, deadline: QueryDeadline) -> MLTrainerError:
    if deadline.fired.is_set() or _code(exc) == "57014":
        return deadline.error()
    said, code = detail(exc, database), _code(exc)
    lowered = said.lower()
    if code in ("42P01", "3F000") or "no such table" in lowered or "table with name" in lowered:
        return NotFound(
            f"The database of {database.reference} has no such table or view: {said}.",
            next_step="Check the name (case counts) and its schema; a table is named "
            "sql:secret://NAME#TABLE or #SCHEMA.TABLE.",
        )
    if "disabled by configuration" in lowered or "configuration has been locked" in lowered:
        return PermissionDenied(
            f"The database refused to reach outside itself: {said}.",
            next_step="Query the database's own tables only: files, URLs and settings are out "
            "of reach of sql: datasets.",
        )
    if code == "42501" or "permission denied" in lowered:
        return PermissionDenied(
            f"The database user of {database.reference} may not read this: {said}.",
            next_step="Query tables this user may read, or ask the database's owner to GRANT "
            "SELECT on it.",
        )
    if (
        code == "25006"
        or "read-only" in lowered
        or "readonly" in lowered
        or "not authorized" in lowered
    ):
        return PermissionDenied(
            f"The database refused a write: this connection is read-only ({said}).",
            next_step="Pass a plain SELECT; sql: datasets never change the database.",
        )
    return InvalidInput(
        f"The database rejected the query: {said}.",
        next_step="Fix the query (names, types, syntax of this database) and call again.",
    )


def _code(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)
