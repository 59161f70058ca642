"""What a sql: reference may name and what a query may do: the reference grammar, and one
read-only SELECT checked by sqlglot in each database's dialect (no database needed)."""

from __future__ import annotations

import re

import pytest
from sql_fixtures import require_sql_extra

from mltrainer.state.errors import InvalidInput, MLTrainerError
from mltrainer.tools.datasets.refs import parse_ref

require_sql_extra()

from mltrainer.tools.datasets.sql_query import checked_query, table_query  # noqa: E402


# -- the reference -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ref", "query", "table"),
    [
        ("sql:secret://SHOP#customers", None, "customers"),
        ("sql:secret://SHOP#sales.orders", None, "sales.orders"),
        ("sql:secret://SHOP?query=SELECT * FROM t WHERE tag = '#1'", "SELECT * FROM t WHERE tag = '#1'", None),
        ("sql:secret://SHOP?query=  SELECT 1  ", "SELECT 1", None),
    ],
)  # fmt: skip
def test_sql_references_parse_into_a_secret_and_a_table_or_query(
    ref: str, query: str | None, table: str | None
) -> None:
    parsed = parse_ref(ref)
    assert (parsed.source, parsed.secret) == ("sql", "secret://SHOP")
    assert (parsed.query, parsed.table, parsed.file) == (query, table, None)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("sql:postgresql://me:hunter2-secret@db.example.com/x#t", "never by its URL"),
        ("sql:secret://SHOP", "neither a table nor a query"),
        ("sql:secret://shop#t", "Malformed secret reference"),
        ("sql:secret://SHOP?query=   ", "query after '?query=' is empty"),
        ("sql:secret://SHOP#a.b.c", "not a table name"),
        ("sql:secret://SHOP#", "not a table name"),
        ("sql:secret://SHOP#sales. orders", "not a table name"),
    ],
)
def test_malformed_sql_references_are_refused_without_echoing_a_url(ref: str, message: str) -> None:
    with pytest.raises(MLTrainerError, match=re.escape(message)) as info:
        parse_ref(ref)
    assert "hunter2" not in str(info.value)


# -- one read-only SELECT ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("backend", "query", "why"),
    [
        ("postgresql", "SELECT 1; DELETE FROM notes", "2 statements"),
        ("sqlite", "SELECT * FROM notes; DROP TABLE notes", "2 statements"),
        ("postgresql", "WITH gone AS (DELETE FROM notes RETURNING *) SELECT * FROM gone", "DELETE"),
        ("postgresql", "WITH x AS (UPDATE notes SET body = '' RETURNING id) SELECT * FROM x", "UPDATE"),
        ("postgresql", "WITH a AS (SELECT 1) INSERT INTO notes SELECT * FROM a", "INSERT"),
        ("postgresql", "SELECT * INTO copied FROM notes", "SELECT ... INTO"),
        ("postgresql", "SELECT * FROM notes FOR UPDATE", "FOR UPDATE"),
        ("postgresql", "COPY notes TO '/tmp/out.csv'", "COPY"),
        ("postgresql", "SELECT pg_read_file('/etc/passwd')", "pg_read_file()"),
        ("postgresql", "SELECT lo_export(1234, '/tmp/x')", "lo_export()"),
        ("postgresql", "SELECT query_to_xml('DELETE FROM notes', true, true, '')", "query_to_xml()"),
        ("postgresql", "SELECT set_config('default_transaction_read_only', 'off', false)", "set_config()"),
        ("postgresql", "SELECT nextval('counter')", "nextval()"),
        ("postgresql", "DROP TABLE notes", "DROP"),
        ("postgresql", "EXPLAIN ANALYZE DELETE FROM notes", "cannot parse"),
        ("postgresql", "CALL cleanup()", "cannot parse"),
        ("duckdb", "SELECT * FROM read_csv('/etc/passwd')", "read_csv()"),
        ("duckdb", "SELECT * FROM '/etc/passwd'", "names a file"),
        ("duckdb", "SELECT * FROM 'https://example.com/x.parquet'", "names a file"),
        ("duckdb", "SELECT * FROM query('DELETE FROM notes')", "query()"),
        ("duckdb", "ATTACH 'other.duckdb'", "ATTACH"),
        ("duckdb", "COPY notes TO 'out.csv'", "COPY"),
        ("duckdb", "INSTALL httpfs", "INSTALL"),
        ("duckdb", "SET enable_external_access = true", "SET"),
        ("sqlite", "PRAGMA writable_schema = 1", "PRAGMA"),
        ("sqlite", "ATTACH DATABASE 'other.db' AS other", "ATTACH"),
        ("sqlite", "SELECT readfile('/etc/passwd')", "readfile()"),
        ("sqlite", "SELECT load_extension('evil')", "load_extension()"),
        ("sqlite", "VACUUM INTO '/tmp/copy.db'", "cannot parse"),
        ("sqlite", "INSERT INTO notes VALUES (2, 'x')", "INSERT"),
        ("sqlite", "SELECT 'unterminated", "could not be parsed"),
    ],
)  # fmt: skip
def test_only_one_read_only_select_is_accepted(backend: str, query: str, why: str) -> None:
    with pytest.raises(InvalidInput) as info:
        checked_query(query, backend)
    assert why in str(info.value)
    assert "SELECT" in str(info.value)  # and what to pass instead


@pytest.mark.parametrize(
    ("backend", "query", "runs"),
    [
        ("postgresql", "WITH recent AS (SELECT * FROM t WHERE d > 1) SELECT a FROM recent",
         "WITH recent AS (SELECT * FROM t WHERE d > 1) SELECT a FROM recent"),
        ("postgresql", "SELECT a FROM t UNION ALL SELECT b FROM u;", "SELECT a FROM t UNION ALL SELECT b FROM u"),
        ("postgresql", "SELECT x::int, ':name' FROM t WHERE s LIKE 'a%'",
         "SELECT CAST(x AS INT), ':name' FROM t WHERE s LIKE 'a%'"),
        ("postgresql", "SELECT $$;DELETE FROM t$$ AS text", "SELECT ';DELETE FROM t' AS text"),
        ("sqlite", "select * from t -- ; drop table t", "SELECT * FROM t /* ; drop table t */"),
    ],
)  # fmt: skip
def test_what_runs_is_the_checked_tree_rendered_again(backend: str, query: str, runs: str) -> None:
    assert checked_query(query, backend) == runs


def test_a_table_name_is_only_ever_a_quoted_identifier() -> None:
    assert table_query('x"; DROP TABLE notes; --', "postgresql") == (
        'SELECT * FROM "x""; DROP TABLE notes; --"'
    )
    assert table_query("sales.Orders", "duckdb") == 'SELECT * FROM "sales"."Orders"'
    with pytest.raises(InvalidInput, match="names a file"):
        table_query("/etc/passwd", "duckdb")
