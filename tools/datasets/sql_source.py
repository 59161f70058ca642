"""SQL databases as datasets: ``sql:secret://NAME?query=SELECT ...`` and ``sql:secret://NAME#TABLE``.

``fetch`` reads the rows once into a Parquet snapshot in the datasets cache (``data.parquet``)
and records the query that ran, the row count, the column types and the file's sha256 in the
dataset record; the same reference is answered from the snapshot afterwards without touching
the database (``refresh`` reads again, and so does a secret that now names another database).
At most ``MLTRAINER_SQL_MAX_ROWS`` rows are kept: a query that returns more is refused with the
numbers rather than cut or sampled, because the first rows a database happens to return are
not a sample, and a sample the caller writes (``ORDER BY random() LIMIT n``, ``TABLESAMPLE``)
stays in the recorded query, so the snapshot can be made again.

``write_table`` creates a new table (never an existing one) and fills it in one transaction:
the only writable connection this project opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from mltrainer.state.errors import DatasetError, InvalidInput, NotFound, PermissionDenied
from mltrainer.state.models import DatasetRecord, utcnow
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.datasets import cache
from mltrainer.tools.datasets.limits import download_slot
from mltrainer.tools.datasets.models import DownloadResult, ProgressFn, no_progress
from mltrainer.tools.datasets.refs import DatasetRef, parse_ref
from mltrainer.tools.datasets.sql_connect import Database, Session, detail, resolve, session
from mltrainer.tools.datasets.sql_query import checked_query, count_query, split_table, table_query
from mltrainer.tools.datasets.sql_snapshot import ColumnType, SnapshotWriter

if TYPE_CHECKING:
    import pandas as pd

SNAPSHOT = "data.parquet"
CHUNK_ROWS = 10_000
WRITE_CHUNK_ROWS = 1_000
LISTED_TABLES = 30


class SqlSnapshot(BaseModel):
    """What a snapshot was read from and what it holds (the dataset record's ``meta.sql``)."""

    secret: str
    database: str = Field(description="sqlite, duckdb or postgresql.")
    host: str
    table: str | None = None
    query: str = Field(description="The SQL that ran: sqlglot's rendering of the checked query.")
    rows: int
    columns: list[ColumnType]
    sha256: str = Field(description="Of data.parquet.")
    row_cap: int
    fingerprint: str = Field(description="The database URL without its password, hashed.")
    read_at: str


class WrittenTable(BaseModel):
    ref: str = Field(description="The new table, as a dataset reference.")
    rows: int
    columns: list[str]


def fetch(
    parsed: DatasetRef,
    *,
    settings: Settings,
    store: Store,
    vault: SecretVault,
    refresh: bool = False,
    progress: ProgressFn = no_progress,
) -> DownloadResult:
    """The snapshot of ``parsed`` (a ``sql:`` reference), read now or found in the cache."""
    assert parsed.source == "sql" and parsed.secret is not None
    database = resolve(parsed.secret, settings, vault)  # the host binding holds on every call
    sql = statement(parsed, database)  # and a query that is not one SELECT never gets further
    key = parsed.text
    hit = None if refresh else cache.lookup(store, key)
    if hit is not None and hit.meta.get("sql", {}).get("fingerprint") == database.fingerprint:
        return cache.to_result(hit, cached=True)
    lock = cache.key_lock(key)
    if not lock.acquire(blocking=False):
        raise PermissionDenied(
            f"{key} is being read by another call right now.",
            next_step="Wait for that call to finish, then call again: it will be answered from "
            "the snapshot.",
        )
    try:
        with download_slot(settings):
            record = _snapshot(parsed, database, sql, key, settings, store, progress)
    finally:
        lock.release()
    return cache.to_result(record, cached=False)


def statement(parsed: DatasetRef, database: Database) -> str:
    if parsed.table is not None:
        return table_query(parsed.table, database.backend)
    assert parsed.query is not None
    return checked_query(parsed.query, database.backend)


def _snapshot(
    parsed: DatasetRef,
    database: Database,
    sql: str,
    key: str,
    settings: Settings,
    store: Store,
    progress: ProgressFn,
) -> DatasetRecord:
    dataset_id = cache.dataset_id_for(key)
    with cache.staging(settings.datasets_dir, dataset_id) as tmp:
        with session(database, settings, read_only=True) as db:
            if parsed.table is not None:
                _check_table(db, parsed.table)
            writer = _read(db, sql, tmp, settings.sql_max_rows, progress)
        columns = writer.finish(tmp / SNAPSHOT)
        files = cache.inventory(tmp)
    snapshot = SqlSnapshot(
        secret=database.reference,
        database=database.backend,
        host=database.host,
        table=parsed.table,
        query=sql,
        rows=writer.rows,
        columns=columns,
        sha256=files[0].sha256,
        row_cap=settings.sql_max_rows,
        fingerprint=database.fingerprint,
        read_at=utcnow().isoformat(),
    )
    what = parsed.table or "query"
    title = f"{what} on {database.reference}: {writer.rows} rows x {len(columns)} columns"
    meta: dict[str, object] = {"title": title, "sql": snapshot.model_dump(mode="json")}
    final = settings.datasets_dir / dataset_id
    return cache.save(store, key=key, source="sql", local_dir=final, files=files, meta=meta)


def _read(db: Session, sql: str, tmp: Path, cap: int, progress: ProgressFn) -> SnapshotWriter:
    result = db.stream(sql, CHUNK_ROWS)
    writer = SnapshotWriter(tmp, list(result.keys()))
    while rows := result.fetchmany(CHUNK_ROWS):
        db.deadline.check()
        if writer.rows + len(rows) > cap:
            result.close()
            raise _over_cap(db, sql, cap)
        writer.add(rows)
        progress(writer.rows, None, f"{writer.rows} rows")
    if writer.rows == 0:
        raise DatasetError(
            f"{db.database.reference} returned no rows for: {sql[:200]}",
            next_step="Check the table, or the WHERE clause of the query.",
        )
    return writer


def _over_cap(db: Session, sql: str, cap: int) -> DatasetError:
    """The refusal, with the query's full row count when the database gives it in time."""
    from sqlalchemy.exc import DBAPIError

    try:
        count = db.conn.exec_driver_sql(count_query(sql, db.database.backend)).scalar_one()
        many = f"{int(count):,} rows"
    except DBAPIError:  # the count is a courtesy: the refusal stands without it
        many = f"more than {cap:,} rows"
    return DatasetError(
        f"The query returns {many}, over the cap of {cap:,} (MLTRAINER_SQL_MAX_ROWS); nothing "
        "was kept.",
        next_step="Narrow it with a WHERE, take a sample in the query itself (e.g. ORDER BY "
        f"random() LIMIT {cap}), or have the person raise MLTRAINER_SQL_MAX_ROWS.",
    )


def _check_table(db: Session, table: str) -> None:
    """A missing table is named, with the tables that do exist."""
    from sqlalchemy import inspect

    schema, name = split_table(table)
    inspector = inspect(db.conn)
    if inspector.has_table(name, schema=schema):
        return
    names = sorted(
        inspector.get_table_names(schema=schema) + inspector.get_view_names(schema=schema)
    )
    shown = ", ".join(names[:LISTED_TABLES]) + (" ..." if len(names) > LISTED_TABLES else "")
    raise NotFound(
        f"The database of {db.database.reference} has no table '{table}'"
        + (f" in schema '{schema}'" if schema else "")
        + ".",
        next_step=f"Tables there: {shown}." if names else "It has no tables this user can see.",
    )


def write_table(
    reference: str, frame: pd.DataFrame, *, settings: Settings, vault: SecretVault
) -> WrittenTable:
    """Create the new table ``reference`` (``sql:secret://NAME#TABLE``) holding ``frame``, with
    a ``row_number`` column first (each row's 0-based position), in one transaction; an
    existing table is never written into."""
    parsed = parse_ref(reference)
    if parsed.source != "sql" or parsed.table is None or parsed.secret is None:
        raise InvalidInput(
            "Predictions are written to a new database table named "
            "sql:secret://NAME#TABLE (or #SCHEMA.TABLE).",
            next_step="Pass output='sql:secret://NAME#TABLE', NAME being the secret that holds "
            "the database URL.",
        )
    database = resolve(parsed.secret, settings, vault)
    schema, name = split_table(parsed.table)
    with session(database, settings, read_only=False) as db:
        from pandas.errors import DatabaseError
        from sqlalchemy import inspect

        if inspect(db.conn).has_table(name, schema=schema):
            raise _exists(parsed.text)
        try:
            frame.reset_index(drop=True).to_sql(
                name, db.conn, schema=schema, if_exists="fail", index=True,
                index_label="row_number", chunksize=WRITE_CHUNK_ROWS,
            )  # fmt: skip
        except ValueError as exc:  # created by someone else since the check above
            raise _exists(parsed.text) from exc
        except DatabaseError as exc:  # pandas' wrapping of the driver's error; rolled back
            said = detail(exc.__cause__ or exc, database)
            raise DatasetError(
                f"Could not write the predictions to {parsed.text}: {said}; nothing was written.",
                next_step="Check that this database user may create tables there.",
            ) from None
    return WrittenTable(ref=parsed.text, rows=len(frame), columns=[str(c) for c in frame.columns])


def _exists(ref: str) -> PermissionDenied:
    return PermissionDenied(
        f"{ref} already exists; predictions go into a new table only, never into an existing one.",
        next_step="Pass the name of a table that does not exist yet.",
    )
