"""sql: datasets on real SQLite and DuckDB files: Parquet snapshots recorded in the cache, the
row cap, the deadline, read-only connections underneath the query check, the host binding and
the path guard, and predictions written to a new table only. The reference grammar and the
query check: test_datasets_sql_query.py; PostgreSQL: test_datasets_sql_pg.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import connect, error_text, payload
from sql_fixtures import duckdb_db, require_sql_extra, sqlite_db, store_secret

from mltrainer.state.destinations import host_of_url, password_of_url
from mltrainer.state.errors import InvalidInput, MLTrainerError, PermissionDenied, SecretError
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store

require_sql_extra()

from mltrainer.tools.datasets.sql_connect import resolve, session  # noqa: E402
from mltrainer.tools.datasets.sql_source import write_table  # noqa: E402

BACKENDS = ["sqlite", "duckdb"]


def make_db(backend: str, folder: Path, rows: int = 400) -> str:
    """A database file with the customers and notes tables; its URL."""
    if backend == "sqlite":
        return f"sqlite:///{sqlite_db(folder / 'shop.db', rows)}"
    return f"duckdb:///{duckdb_db(folder / 'shop.duckdb', rows)}"


def notes(url: str) -> list[tuple[object, ...]]:
    """The notes table, read around the project's code."""
    path = url.split(":///", 1)[1]
    if url.startswith("sqlite"):
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT * FROM notes").fetchall()
    import duckdb

    with duckdb.connect(path, read_only=True) as conn:
        return conn.execute("SELECT * FROM notes").fetchall()


# -- snapshots through the MCP server ------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_table_becomes_a_recorded_parquet_snapshot(
    backend: str, settings: Settings, tmp_path: Path
) -> None:
    url = make_db(backend, tmp_path)
    store_secret(settings, "SHOP_DB", url)
    ref = "sql:secret://SHOP_DB#customers"
    async with connect("memory", settings) as client:
        first = payload(await client.call_tool("download_dataset", {"ref": ref}))
        again = payload(await client.call_tool("download_dataset", {"ref": ref}))
        profile = payload(
            await client.call_tool("profile_dataset", {"dataset": ref, "target": "label", "plots": False})
        )  # fmt: skip
        _add_customer(url)
        refreshed = payload(
            await client.call_tool("download_dataset", {"ref": ref, "refresh": True})
        )
    assert (first["source"], first["cached"], again["cached"]) == ("sql", False, True)
    assert [f["path"] for f in first["files"]] == ["data.parquet"]
    assert first["title"] == "customers on secret://SHOP_DB: 400 rows x 4 columns"
    assert profile["n_rows"] == 400 and profile["target"]["task"] == "binary"
    assert not refreshed["cached"] and "401 rows" in refreshed["title"]

    record = Store(settings.db_path).get_dataset(first["dataset_id"])
    meta = record.meta["sql"]
    snapshot = Path(record.local_dir) / "data.parquet"
    assert meta["query"] == 'SELECT * FROM "customers"' and meta["rows"] == 401
    assert meta["database"] == backend and meta["host"] == "localhost"
    assert meta["sha256"] == record.files[0]["sha256"]
    assert [(c["name"], c["type"]) for c in meta["columns"]] == [
        ("x1", "double"), ("x2", "double"), ("colour", "string"), ("label", "string"),
    ]  # fmt: skip
    assert pq.read_metadata(snapshot).num_rows == 401


def _add_customer(url: str) -> None:
    path = url.split(":///", 1)[1]
    row = "INSERT INTO customers VALUES (0.5, 0.5, 'red', 'yes')"
    if url.startswith("sqlite"):
        with sqlite3.connect(path) as conn:
            conn.execute(row)
        return
    import duckdb

    with duckdb.connect(path) as conn:
        conn.execute(row)


@pytest.mark.anyio
async def test_a_query_snapshot_keeps_what_ran_and_types_mixed_columns(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.db"
    with sqlite3.connect(path) as conn:  # SQLite lets a column change type between rows
        conn.execute("CREATE TABLE m (id INTEGER, value, amount)")
        rows = [(i, i if i < 15_000 else f"v{i}", i if i % 2 else i + 0.5) for i in range(20_000)]
        conn.executemany("INSERT INTO m VALUES (?, ?, ?)", rows)
    store_secret(settings, "MIXED_DB", f"sqlite:///{path}")
    ref = "sql:secret://MIXED_DB?query=select m.id, m.value, m.amount, m.id from m -- all of it"
    async with connect("memory", settings) as client:
        result = payload(await client.call_tool("download_dataset", {"ref": ref}))
    record = Store(settings.db_path).get_dataset(result["dataset_id"])
    meta = record.meta["sql"]
    assert meta["query"] == "SELECT m.id, m.value, m.amount, m.id FROM m /* all of it */"
    assert [(c["name"], c["type"]) for c in meta["columns"]] == [
        ("id", "int64"), ("value", "string"), ("amount", "double"), ("id_2", "int64"),
    ]  # fmt: skip
    frame = pd.read_parquet(Path(record.local_dir) / "data.parquet")
    assert len(frame) == 20_000 and frame["value"].iloc[-1] == "v19999"


@pytest.mark.anyio
@pytest.mark.parametrize("backend", BACKENDS)
async def test_over_the_row_cap_is_refused_with_the_numbers_and_nothing_kept(
    backend: str, home: Path, tmp_path: Path
) -> None:
    settings = Settings(home=home, sql_max_rows=100)
    store_secret(settings, "SHOP_DB", make_db(backend, tmp_path))
    async with connect("memory", settings) as client:
        refused = await client.call_tool(
            "download_dataset", {"ref": "sql:secret://SHOP_DB?query=SELECT * FROM customers"}
        )
    text = error_text(refused)
    assert "returns 400 rows, over the cap of 100 (MLTRAINER_SQL_MAX_ROWS)" in text
    assert "LIMIT 100" in text
    assert list(settings.datasets_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("backend", "query"),
    [
        ("sqlite", "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) "
                   "SELECT count(*) FROM r"),
        ("duckdb", "SELECT count(*) FROM range(100000000) a, range(100000000) b"),
    ],
)  # fmt: skip
def test_a_query_past_its_deadline_is_cancelled(
    backend: str, query: str, home: Path, tmp_path: Path
) -> None:
    from mltrainer.tools.datasets.fetch import fetch

    settings = Settings(home=home, sql_timeout_s=1)
    store_secret(settings, "SHOP_DB", make_db(backend, tmp_path))
    vault = SecretVault.for_settings(settings, {})
    with pytest.raises(
        MLTrainerError, match=r"did not finish within 1 s \(MLTRAINER_SQL_TIMEOUT_S\)"
    ):
        fetch(f"sql:secret://SHOP_DB?query={query}", settings=settings, store=Store(settings.db_path), vault=vault)  # fmt: skip
    assert not any(settings.datasets_dir.iterdir())


# -- read-only underneath the parser -------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "write",
    [
        "INSERT INTO notes VALUES (2, 'written')",
        "DELETE FROM notes",
        "UPDATE notes SET body = 'changed'",
        "DROP TABLE notes",
        "CREATE TABLE planted (x INTEGER)",
    ],
)
def test_the_connection_itself_refuses_writes(
    backend: str, write: str, settings: Settings, tmp_path: Path
) -> None:
    """Past the parser (a bug there, a dialect it misreads), the database still says no."""
    url = make_db(backend, tmp_path)
    store_secret(settings, "SHOP_DB", url)
    database = resolve("secret://SHOP_DB", settings, SecretVault.for_settings(settings, {}))
    with (
        pytest.raises(PermissionDenied, match="read-only"),
        session(database, settings, read_only=True) as db,
    ):
        db.stream(write, 100).fetchall()
    assert notes(url) == [(1, "keep me")]


def test_duckdb_cannot_reach_files_even_past_the_parser(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    store_secret(settings, "SHOP_DB", make_db("duckdb", tmp_path))
    database = resolve("secret://SHOP_DB", settings, SecretVault.for_settings(settings, {}))
    for sql in (f"SELECT * FROM read_csv('{tmp_path}/other.csv')", "COPY notes TO 'out.csv'",
                f"ATTACH '{tmp_path}/x.duckdb'", "SET enable_external_access = true"):  # fmt: skip
        with (
            pytest.raises(PermissionDenied, match=r"reach outside itself"),
            session(database, settings, read_only=True) as db,
        ):
            db.stream(sql, 100).fetchall()
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "x.duckdb").exists()


# -- the secret and the path ---------------------------------------------------------------
def test_file_urls_are_bound_to_localhost_and_decoded_passwords_are_masked() -> None:
    assert host_of_url("sqlite:///data/shop.db") == "localhost"
    assert host_of_url("duckdb:////abs/shop.duckdb") == "localhost"
    assert host_of_url("sqlite://") is None and host_of_url("sqlite:///") is None
    assert password_of_url("postgresql://me:p%40ss%3Aword@db:5432/x") == "p@ss:word"


@pytest.mark.anyio
async def test_a_file_secret_bound_to_another_host_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    store_secret(settings, "SHOP_DB", make_db("sqlite", tmp_path), hosts=["db.example.com"])
    async with connect("memory", settings) as client:
        refused = await client.call_tool(
            "download_dataset", {"ref": "sql:secret://SHOP_DB#customers"}
        )
    assert "may be sent to db.example.com only; this call would send it to localhost" in (
        error_text(refused)
    )


@pytest.mark.anyio
async def test_a_database_file_is_read_only_from_the_data_folders(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    store_secret(settings, "OUTSIDE_DB", make_db("sqlite", elsewhere))
    store_secret(settings, "STATE_DB", f"sqlite:///{settings.db_path}")
    async with connect("memory", settings) as client:
        outside = await client.call_tool(
            "download_dataset", {"ref": "sql:secret://OUTSIDE_DB#customers"}
        )
        state = await client.call_tool("download_dataset", {"ref": "sql:secret://STATE_DB#jobs"})
    assert "the database file of secret://OUTSIDE_DB" in error_text(outside)
    assert "is outside the folders tools may read" in error_text(outside)
    assert "the database file of secret://STATE_DB" in error_text(state)


@pytest.mark.anyio
async def test_a_secret_that_names_another_database_is_read_again(
    settings: Settings, tmp_path: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    store_secret(settings, "SHOP_DB", make_db("sqlite", first, rows=400))
    ref = "sql:secret://SHOP_DB#customers"
    async with connect("memory", settings) as client:
        before = payload(await client.call_tool("download_dataset", {"ref": ref}))
        store_secret(settings, "SHOP_DB", make_db("sqlite", second, rows=120))
        after = payload(await client.call_tool("download_dataset", {"ref": ref}))
    assert "400 rows" in before["title"]
    assert not after["cached"] and "120 rows" in after["title"]


def test_a_missing_table_is_named_with_the_tables_there(settings: Settings, tmp_path: Path) -> None:
    from mltrainer.tools.datasets.fetch import fetch

    url = make_db("duckdb", tmp_path)
    store_secret(settings, "SHOP_DB", url)
    vault, store = SecretVault.for_settings(settings, {}), Store(settings.db_path)
    with pytest.raises(MLTrainerError) as info:
        fetch('sql:secret://SHOP_DB#x"; DROP TABLE notes; --', settings=settings, store=store, vault=vault)  # fmt: skip
    assert str(info.value).startswith(
        """The database of secret://SHOP_DB has no table 'x"; DROP TABLE notes; --'."""
    )
    assert "Tables there: customers, notes." in str(info.value)
    assert notes(url) == [(1, "keep me")]


# -- predictions into a new table ----------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_predictions_go_into_a_new_table_and_never_an_existing_one(
    backend: str, settings: Settings, tmp_path: Path
) -> None:
    url = make_db(backend, tmp_path)
    store_secret(settings, "SHOP_DB", url)
    vault = SecretVault.for_settings(settings, {})
    frame = pd.DataFrame({"prediction": ["yes", "no", "yes"], "proba_yes": [0.9, 0.2, 0.7]})
    written = write_table("sql:secret://SHOP_DB#scored", frame, settings=settings, vault=vault)
    assert (written.ref, written.rows) == ("sql:secret://SHOP_DB#scored", 3)
    for existing in ("scored", "notes"):
        with pytest.raises(
            PermissionDenied, match="already exists; predictions go into a new table"
        ):
            write_table(f"sql:secret://SHOP_DB#{existing}", frame, settings=settings, vault=vault)
    with pytest.raises(InvalidInput, match="new database table named sql:secret://NAME#TABLE"):
        write_table("sql:secret://SHOP_DB?query=SELECT 1", frame, settings=settings, vault=vault)
    assert notes(url) == [(1, "keep me")]
    path = url.split(":///", 1)[1]
    if backend == "sqlite":
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT * FROM scored ORDER BY row_number").fetchall()
    else:
        import duckdb

        with duckdb.connect(path, read_only=True) as conn:
            rows = conn.execute("SELECT * FROM scored ORDER BY row_number").fetchall()
    assert rows == [(0, "yes", 0.9), (1, "no", 0.2), (2, "yes", 0.7)]


def test_unsupported_and_malformed_database_urls_are_refused(settings: Settings) -> None:
    vault = SecretVault.for_settings(settings, {})
    for name, url, why in (
        ("MYSQL_DB", "mysql://me:secret-pw-123@db.example.com/x", "sql: datasets read SQLite"),
        ("MEMORY_DB", "sqlite:///:memory:", "must name a database file"),
        ("PARAMS_DB", "duckdb:///shop.duckdb?enable_external_access=true", "must name a database file"),
    ):  # fmt: skip
        store_secret(settings, name, url)
        with pytest.raises(MLTrainerError, match=why) as info:
            resolve(f"secret://{name}", settings, vault)
        assert "secret-pw-123" not in str(info.value)
    with pytest.raises(SecretError, match="not a URL"):
        store_secret(settings, "TOKEN_ONLY", "just-a-token-value", hosts=["api.example.com"])
        resolve("secret://TOKEN_ONLY", settings, vault)
