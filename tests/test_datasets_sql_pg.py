"""sql: datasets on a real PostgreSQL server started for the session (sql_fixtures.postgres):
a table trains and predicts through a real MCP client with the predictions written back to a
new table, and the password (URL-encoded in the secret) masked everywhere; wrong password,
unreachable host, unknown table, permission denied, writes refused by the parser and by the
server, the row cap, the deadline and the host binding."""

from __future__ import annotations

import json
import logging
import urllib.parse
from pathlib import Path

import pytest
from canary import Canary
from conftest import connect, error_text, free_port, payload, train_until_done
from sql_fixtures import (
    OTHER_PASSWORD,
    PASSWORD,
    URL_PASSWORD,
    Postgres,
    postgres_server,  # noqa: F401 - the fixture 'postgres'
    require_sql_extra,
    store_secret,
)

from mltrainer.state.errors import MLTrainerError, PermissionDenied, SecretError
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings

require_sql_extra()

from mltrainer.tools.datasets.sql_connect import resolve, session  # noqa: E402

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command

NEW_ROWS = "SELECT x1, x2, colour FROM customers ORDER BY x1 LIMIT 25"


def scored(server: Postgres, table: str) -> list[tuple[object, ...]]:
    return server.admin(f"SELECT row_number, prediction FROM {table} ORDER BY row_number")


@pytest.mark.anyio
async def test_a_postgres_table_trains_and_predicts_with_the_password_masked_everywhere(
    postgres: Postgres, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the server's own log lines, every library's included
    url = postgres.url()
    assert URL_PASSWORD in url and "%40" in URL_PASSWORD and "%3A" in URL_PASSWORD
    store_secret(settings, "WAREHOUSE", url)
    table = f"scored_{free_port()}"  # the cluster lives for the session: a name of this test's
    outputs: list[str] = []
    async with connect("memory", settings) as client:
        trained = await train_until_done(
            client,
            {"dataset": "sql:secret://WAREHOUSE#customers", "target": "label",
             "time_budget_s": 8, "plots": False},
        )  # fmt: skip
        job = payload(trained)
        assert job["status"] == "succeeded", job
        predict = {
            "model": job["model_id"],
            "dataset": f"sql:secret://WAREHOUSE?query={NEW_ROWS}",
            "output": f"sql:secret://WAREHOUSE#{table}",
        }
        predicted = await client.call_tool("predict", predict)
        again = await client.call_tool("predict", predict)
        wrong = await client.call_tool(
            "download_dataset", {"ref": "sql:secret://WAREHOUSE?query=SELECT nosuch FROM customers"}
        )
        log = await client.read_resource(f"mltrainer://jobs/{job['job_id']}/log")
        for result in (trained, predicted, again, wrong):
            outputs.append(json.dumps(result.model_dump(mode="json")))
        outputs.append(json.dumps(log.model_dump(mode="json")))
    outputs.append(caplog.text)
    out = payload(predicted)
    assert out["n_rows"] == 25 and out["output_table"] == f"sql:secret://WAREHOUSE#{table}"
    rows = scored(postgres, table)
    assert [r[0] for r in rows] == list(range(25)) and {r[1] for r in rows} <= {"yes", "no"}
    assert "already exists; predictions go into a new table only" in error_text(again)
    assert scored(postgres, table) == rows  # the existing table was not touched
    assert 'column "nosuch" does not exist' in error_text(wrong)

    for value in (PASSWORD, URL_PASSWORD, url):
        Canary("WAREHOUSE", value).assert_absent(settings.home, *outputs)


@pytest.mark.anyio
async def test_wrong_password_and_unreachable_host_say_what_to_do_without_echo(
    postgres: Postgres, settings: Settings
) -> None:
    wrong = postgres.url(password=urllib.parse.quote("wrong-" + PASSWORD, safe=""))
    closed = postgres.url().replace(f":{postgres.port}/", f":{free_port()}/")
    nobody = postgres.url(user="nobody")
    missing_db = postgres.url(db="nodb")
    for name, value in (
        ("WRONG", wrong),
        ("CLOSED", closed),
        ("NOBODY", nobody),
        ("NODB", missing_db),
    ):
        store_secret(settings, name, value)
    async with connect("memory", settings) as client:
        texts = {
            name: error_text(await client.call_tool("download_dataset", {"ref": f"sql:secret://{name}#customers"}))
            for name in ("WRONG", "CLOSED", "NOBODY", "NODB")
        }  # fmt: skip
    assert (
        f"The database at 127.0.0.1:{postgres.port} refused the user name or password in "
        "secret://WRONG. Ask the person to store the right database URL again"
    ) in texts["WRONG"]
    assert "refused the user name or password in secret://NOBODY" in texts["NOBODY"]
    assert "Could not reach the database of secret://CLOSED at 127.0.0.1:" in texts["CLOSED"]
    assert "Check that the database server runs" in texts["CLOSED"]
    assert "The database named in secret://NODB does not exist" in texts["NODB"]
    for value in (PASSWORD, URL_PASSWORD, "wrong-"):
        Canary("WRONG", value).assert_absent(settings.home, *texts.values())


@pytest.mark.anyio
async def test_unknown_tables_and_tables_this_user_may_not_read(
    postgres: Postgres, settings: Settings
) -> None:
    store_secret(settings, "WAREHOUSE", postgres.url())
    calls = {
        "table": "sql:secret://WAREHOUSE#nosuch",
        "query": "sql:secret://WAREHOUSE?query=SELECT * FROM nosuch",
        "denied": "sql:secret://WAREHOUSE#salaries",
        "case": "sql:secret://WAREHOUSE#Customers",
    }
    async with connect("memory", settings) as client:
        texts = {
            what: error_text(await client.call_tool("download_dataset", {"ref": ref}))
            for what, ref in calls.items()
        }
    assert "The database of secret://WAREHOUSE has no table 'nosuch'." in texts["table"]
    assert "Tables there: customers, notes, salaries" in texts["table"]
    assert 'no such table or view: relation "nosuch" does not exist' in texts["query"]
    assert (
        "The database user of secret://WAREHOUSE may not read this: permission denied for table "
        "salaries."
    ) in texts["denied"]
    assert "GRANT SELECT" in texts["denied"]
    assert "has no table 'Customers'" in texts["case"]  # quoted: case counts


@pytest.mark.anyio
@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1; DELETE FROM notes",
        "WITH gone AS (DELETE FROM notes RETURNING *) SELECT * FROM gone",
        "SELECT * INTO copied FROM notes",
        "COPY notes TO '/tmp/mltrainer-notes.csv'",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT lo_export(1234, '/tmp/mltrainer-x')",
        "SELECT nextval('counter')",
    ],
)
async def test_writes_are_refused_before_they_reach_postgres(
    postgres: Postgres, settings: Settings, query: str
) -> None:
    store_secret(settings, "WAREHOUSE", postgres.url())
    async with connect("memory", settings) as client:
        refused = await client.call_tool(
            "download_dataset", {"ref": f"sql:secret://WAREHOUSE?query={query}"}
        )
    assert "Refusing the query" in error_text(refused) or "statements" in error_text(refused)
    assert postgres.admin("SELECT * FROM notes") == [(1, "keep me")]
    assert postgres.admin("SELECT last_value, is_called FROM counter") == [(1, False)]


@pytest.mark.parametrize(
    "write",
    [
        "DELETE FROM notes",
        "INSERT INTO notes VALUES (2, 'x')",
        "SELECT nextval('counter')",
        "SELECT set_config('transaction_read_only', 'off', false)",
    ],
)
def test_the_postgres_transaction_itself_is_read_only(
    postgres: Postgres, settings: Settings, write: str
) -> None:
    """Past the parser, the server refuses too: the session and the transaction are read-only."""
    store_secret(settings, "WAREHOUSE", postgres.url())
    database = resolve("secret://WAREHOUSE", settings, SecretVault.for_settings(settings, {}))
    with pytest.raises(MLTrainerError) as info, session(database, settings, read_only=True) as db:
        db.conn.exec_driver_sql(write)
    assert "read-only" in str(info.value) or "read-write mode" in str(info.value)
    assert postgres.admin("SELECT * FROM notes") == [(1, "keep me")]
    assert postgres.admin("SELECT last_value, is_called FROM counter") == [(1, False)]


@pytest.mark.anyio
async def test_postgres_over_the_cap_and_past_the_deadline(postgres: Postgres, home: Path) -> None:
    settings = Settings(home=home, sql_max_rows=50, sql_timeout_s=1)
    store_secret(settings, "WAREHOUSE", postgres.url())
    async with connect("memory", settings) as client:
        over = await client.call_tool(
            "download_dataset", {"ref": "sql:secret://WAREHOUSE#customers"}
        )
        slow = await client.call_tool(
            "download_dataset", {"ref": "sql:secret://WAREHOUSE?query=SELECT pg_sleep(30) AS s"}
        )
    assert "The query returns 400 rows, over the cap of 50" in error_text(over)
    assert "did not finish within 1 s (MLTRAINER_SQL_TIMEOUT_S)" in error_text(slow)
    assert list(settings.datasets_dir.iterdir()) == []


@pytest.mark.anyio
async def test_a_secret_bound_to_another_host_is_refused(
    postgres: Postgres, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAREHOUSE_URL", postgres.url())
    settings = Settings(home=home, secrets={"WAREHOUSE_URL": ["db.example.com"]})
    async with connect("memory", settings) as client:
        refused = await client.call_tool(
            "download_dataset", {"ref": "sql:secret://WAREHOUSE_URL#customers"}
        )
    text = error_text(refused)
    assert (
        "secret://WAREHOUSE_URL may be sent to db.example.com only; this call would send it to "
        in text
    )
    assert f"127.0.0.1:{postgres.port}" in text
    Canary("WAREHOUSE_URL", PASSWORD).assert_absent(None, text)


def test_a_local_socket_is_allowed_and_other_hosts_in_parameters_are_not(
    postgres: Postgres, settings: Settings
) -> None:
    vault = SecretVault.for_settings(settings, {})
    socket = f"postgresql://other:{OTHER_PASSWORD}@localhost:{postgres.port}/mlt?host={postgres.socket_dir}"
    store_secret(settings, "SOCKET", socket)
    database = resolve("secret://SOCKET", settings, vault)
    with session(database, settings, read_only=True) as db:
        assert db.conn.exec_driver_sql("SELECT current_user").scalar_one() == "other"
    for name, url in (
        ("MOVED", f"postgresql://mlt:{URL_PASSWORD}@127.0.0.1:{postgres.port}/mlt?host=db.example.com"),
        ("HOSTADDR", f"postgresql://mlt:{URL_PASSWORD}@db.example.com/mlt?hostaddr=127.0.0.1"),
        ("OPTIONS", f"postgresql://mlt:{URL_PASSWORD}@127.0.0.1/mlt?options=-c%20default_transaction_read_only%3Doff"),
    ):  # fmt: skip
        store_secret(settings, name, url)
        with pytest.raises(SecretError, match="connection parameters this server does not pass on"):
            resolve(f"secret://{name}", settings, vault)


def test_the_write_connection_creates_the_table_in_one_transaction(
    postgres: Postgres, settings: Settings
) -> None:
    import pandas as pd

    from mltrainer.tools.datasets.sql_source import write_table

    store_secret(settings, "WAREHOUSE", postgres.url())
    vault = SecretVault.for_settings(settings, {})
    table = f"half_{free_port()}"
    frame = pd.DataFrame({"prediction": ["a", "b"], "score": [1.0, object()]})  # cannot be stored
    with pytest.raises(MLTrainerError):
        write_table(f"sql:secret://WAREHOUSE#{table}", frame, settings=settings, vault=vault)
    assert postgres.admin(f"SELECT to_regclass('{table}') IS NULL") == [(True,)]  # rolled back
    with pytest.raises(PermissionDenied, match="already exists"):
        write_table("sql:secret://WAREHOUSE#notes", frame, settings=settings, vault=vault)
