"""What a ``sql:`` dataset may ask of a database: one SELECT, parsed with sqlglot, never matched
by hand.

A query is parsed in the database's own dialect and accepted only when it is a single
``SELECT`` (``WITH ... SELECT``, ``UNION`` and the like included) with nothing anywhere inside
it that writes, locks, changes settings or reaches outside the database: DML or DDL in a CTE,
``SELECT ... INTO``, ``FOR UPDATE``, ``COPY``, ``ATTACH``, ``PRAGMA``, ``SET``, statements sqlglot
could not parse (``Command``), and functions that read or write files, run SQL given as text or
have side effects (``pg_read_file``, ``lo_export``, ``query_to_xml``, DuckDB's ``read_csv`` and
``query``, SQLite's ``readfile``, ``set_config``, ``nextval``...). What runs is sqlglot's own
rendering of the tree it checked, so the database never sees text that parses differently from
what was checked. The connection is read-only as well (``sql_connect``): this is the first of
two locks, not the only one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mltrainer.state.errors import InvalidInput

if TYPE_CHECKING:
    from sqlglot import exp

DIALECTS = {"sqlite": "sqlite", "duckdb": "duckdb", "postgresql": "postgres"}
SELECT_HINT = (
    "Pass one read-only SELECT (or WITH ... SELECT) with no ';' inside, or name a whole table "
    "with sql:secret://NAME#TABLE."
)
# Functions that reach files, run SQL given as text, or change state that a read-only
# transaction does not cover; compared lower-case, by exact name or by prefix.
FORBIDDEN_FUNCTIONS = frozenset(
    {
        "set_config", "nextval", "setval", "currval", "lastval", "dblink", "load_extension",
        "readfile", "writefile", "edit", "fts3_tokenizer", "getenv", "glob", "query",
        "query_table", "pg_sleep_for", "pg_sleep_until", "txid_current", "pg_current_xact_id",
    }
)  # fmt: skip
FORBIDDEN_PREFIXES = (
    "pg_read_", "pg_ls_", "pg_stat_file", "pg_file_", "lo_", "dblink_", "pg_terminate",
    "pg_cancel", "pg_reload", "pg_rotate", "pg_promote", "pg_switch", "pg_create_",
    "pg_drop_", "pg_replication", "pg_logical", "pg_backup", "pg_start_backup",
    "pg_stop_backup", "pg_import", "pg_export", "pg_advisory", "pg_notify", "query_to_",
    "cursor_to_", "database_to_", "schema_to_", "read_", "sniff_", "parquet_", "iceberg_",
    "delta_", "sqlite_", "postgres_", "mysql_", "duckdb_secret", "duckdb_extension",
)  # fmt: skip


def dialect_of(backend: str) -> str:
    return DIALECTS[backend]


def checked_query(query: str, backend: str) -> str:
    """The SQL to run for ``query``: sqlglot's rendering of its one read-only SELECT."""
    tree = _parse_one(query, dialect_of(backend))
    refusal = _refusal(tree)
    if refusal:
        raise InvalidInput(f"Refusing the query: {refusal}.", next_step=SELECT_HINT)
    return str(tree.sql(dialect=dialect_of(backend)))


def table_query(table: str, backend: str) -> str:
    """``SELECT * FROM "schema"."table"``: the name only ever as quoted identifiers."""
    from sqlglot import exp

    schema, name = split_table(table)
    source = exp.Table(
        this=exp.to_identifier(name, quoted=True),
        db=exp.to_identifier(schema, quoted=True) if schema else None,
    )
    select = exp.select("*").from_(source)
    refusal = _refusal(select)
    if refusal:
        raise InvalidInput(f"Refusing the table: {refusal}.", next_step=SELECT_HINT)
    return str(select.sql(dialect=dialect_of(backend)))


def count_query(sql: str, backend: str) -> str:
    """``SELECT COUNT(*)`` over a query already checked by ``checked_query``."""
    from sqlglot import exp, parse_one

    query = parse_one(sql, read=dialect_of(backend))
    assert isinstance(query, exp.Query)  # checked_query made it
    inner = query.subquery("mltrainer_rows")
    return str(exp.select("COUNT(*)").from_(inner).sql(dialect=dialect_of(backend)))


def split_table(table: str) -> tuple[str | None, str]:
    """``SCHEMA.TABLE`` or ``TABLE`` (as refs.py accepts them) into its two parts."""
    schema, dot, name = table.rpartition(".")
    return (schema if dot else None), name


def _parse_one(query: str, dialect: str) -> exp.Expr:
    import sqlglot
    from sqlglot.errors import ParseError, TokenError

    # sqlglot logs a statement it cannot parse before falling back to a Command; the Command
    # is refused below, so the warning (which would repeat the query) is not wanted.
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    try:
        trees = [tree for tree in sqlglot.parse(query, read=dialect) if tree is not None]
    except (ParseError, TokenError) as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise InvalidInput(
            f"The query could not be parsed as {dialect} SQL ({first}).", next_step=SELECT_HINT
        ) from None
    if len(trees) != 1:
        raise InvalidInput(
            f"The query holds {len(trees)} statements; exactly one SELECT is accepted.",
            next_step=SELECT_HINT,
        )
    return trees[0]


def _refusal(tree: exp.Expr) -> str | None:
    """Why ``tree`` is not a plain read-only SELECT, or None when it is."""
    from sqlglot import exp

    if not isinstance(tree, exp.Select | exp.SetOperation | exp.Subquery):
        return f"{_kind(tree)} is not a SELECT"
    forbidden = _forbidden_nodes()
    for node in tree.walk():
        if isinstance(node, forbidden):
            return f"it contains {_kind(node)}, which is not read-only"
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in FORBIDDEN_FUNCTIONS or name.startswith(FORBIDDEN_PREFIXES):
                return f"it calls {name}(), which reaches outside the data or changes state"
        if isinstance(node, exp.Table) and _looks_like_a_file(node.name):
            return f"it reads '{node.name[:80]}', which names a file or an address, not a table"
    return None


def _forbidden_nodes() -> tuple[type, ...]:
    from sqlglot import exp

    names = (
        "DML", "DDL", "Drop", "Alter", "TruncateTable", "Command", "Copy", "Pragma", "Attach",
        "Detach", "Set", "Into", "Lock", "Use", "Transaction", "Commit", "Rollback", "Install",
        "LoadData", "Grant", "Revoke", "Analyze", "Refresh", "Cache", "Uncache", "Export",
        "Kill", "Comment", "Declare", "Summarize", "Describe",
    )  # fmt: skip
    return tuple(getattr(exp, name) for name in names if hasattr(exp, name))


def _kind(node: object) -> str:
    name = type(node).__name__
    spelled = {
        "Into": "SELECT ... INTO",
        "Lock": "FOR UPDATE/SHARE",
        "Command": "a statement sqlglot cannot parse (such as EXPLAIN, CALL, DO or VACUUM)",
    }
    return spelled.get(name, name.upper())


def _looks_like_a_file(name: str) -> bool:
    # DuckDB reads FROM 'data.csv' or FROM 'https://...' as a file scan.
    return any(mark in name for mark in ("/", "\\", "://")) or "." in name
