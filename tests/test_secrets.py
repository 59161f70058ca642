"""Secret references, declared and bound secrets, the vault, the masker, set_secret, and a
canary that must never leak."""

from __future__ import annotations

import base64
import io
import json
import logging
import multiprocessing
import os
import re
import stat
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import connect, error_text, payload, train_until_done
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from mltrainer.state.errors import SecretError
from mltrainer.state.masking import Masker, encoded_forms
from mltrainer.state.secrets import SecretNotSet, SecretVault, parse_reference
from mltrainer.state.settings import Settings

CANARY = "hf_CANARYcanary0123456789abcdefXYZ"
OTHER = "sk-OTHERcanary-9876543210zyxwvut"


def leaked_forms(value: str) -> list[str]:
    raw = value.encode()
    return [
        value,
        value[::-1],
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        urllib.parse.quote(value),
    ]


def vault_for(tmp_path: Path, environ: dict[str, str], **settings: object) -> SecretVault:
    return SecretVault.for_settings(Settings(home=tmp_path / "home", **settings), environ)


@pytest.mark.parametrize(
    "bad",
    [
        "secret://../x",
        "secret://*",
        "secret://",
        "HF_TOKEN",
        "secret://hf token",
        "secret://a/b",
        "secret://" + "A" * 80,
        "file:///etc/passwd",
    ],
)
def test_malformed_references_are_refused(bad: str) -> None:
    with pytest.raises(SecretError) as info:
        parse_reference(bad)
    assert "secret://HF_TOKEN" in str(info.value)


# -- declared and bound ---------------------------------------------------------------------
def test_an_environment_variable_alone_is_never_a_secret(tmp_path: Path) -> None:
    vault = vault_for(
        tmp_path, {"OPENAI_API_KEY": OTHER, "DATABASE_URL": f"postgresql://u:{OTHER}@db/x"}
    )
    for name in ("OPENAI_API_KEY", "DATABASE_URL"):
        with pytest.raises(SecretError, match="not a declared secret") as info:
            vault.credential(f"secret://{name}", destination="https://huggingface.co")
        assert OTHER not in str(info.value)
        with pytest.raises(SecretError, match="not a declared secret"):
            vault.url_credential(f"secret://{name}")


def test_builtin_credentials_go_to_their_service_only(tmp_path: Path) -> None:
    vault = vault_for(
        tmp_path, {"HF_TOKEN": CANARY, "KAGGLE_USERNAME": "someone", "KAGGLE_KEY": "k" * 4 + OTHER}
    )
    assert vault.credential("secret://HF_TOKEN", destination="https://huggingface.co/api/x") == {
        "HF_TOKEN": CANARY
    }
    kaggle = vault.credential("secret://KAGGLE", destination="https://api.kaggle.com/v1")
    assert kaggle["KAGGLE_USERNAME"] == "someone"
    with pytest.raises(SecretError) as info:
        vault.credential("secret://HF_TOKEN", destination="https://evil.example/upload")
    assert str(info.value).startswith(
        "secret://HF_TOKEN may be sent to huggingface.co only; this call would send it to "
        "evil.example."
    )
    with pytest.raises(SecretError, match=r"KAGGLE may be sent to kaggle.com, \*.kaggle.com only"):
        vault.credential("secret://KAGGLE", destination="https://huggingface.co")
    with pytest.raises(SecretError, match="part of secret://KAGGLE"):
        vault.credential("secret://KAGGLE_KEY", destination="https://api.kaggle.com")
    with pytest.raises(SecretNotSet, match="secret://MODAL is not set"):
        vault.credential("secret://MODAL", destination="https://api.modal.com")


def test_a_configured_endpoint_moves_the_binding(tmp_path: Path) -> None:
    vault = vault_for(
        tmp_path,
        {"HF_TOKEN": CANARY},
        hf_endpoint="http://127.0.0.1:5005",
        kaggle_api_endpoint="https://kaggle.internal:8443",
    )
    assert vault.credential("secret://HF_TOKEN", destination="http://127.0.0.1:5005/api")
    with pytest.raises(
        SecretError, match=re.escape("127.0.0.1:5005 only; this call would send it to")
    ):
        vault.credential("secret://HF_TOKEN", destination="https://huggingface.co")
    with pytest.raises(
        SecretError, match=re.escape("127.0.0.1:5005 only")
    ):  # same host, another port
        vault.credential("secret://HF_TOKEN", destination="http://127.0.0.1:5006")
    assert vault.info("KAGGLE").hosts == ["kaggle.internal:8443"]


@pytest.mark.parametrize(
    "destination",
    [
        "http://api.example.com/v1",  # clear text off this machine
        "https://user@api.example.com/",  # a user part: parsers disagree on the host
        "https://evil.example\\@api.example.com/",
        "https://api.example.com.evil.example/",
        "https://evilapi.example.com/",
        "not a url",
    ],
)
def test_destinations_that_only_look_right_are_refused(tmp_path: Path, destination: str) -> None:
    vault = vault_for(tmp_path, {})
    vault.set("MY_API_KEY", OTHER, ["api.example.com", "*.cdn.example.com"])
    assert vault.credential("secret://MY_API_KEY", destination="https://api.example.com/v1")
    assert vault.credential("secret://MY_API_KEY", destination="https://eu.cdn.example.com/")
    with pytest.raises(SecretError) as info:
        vault.credential("secret://MY_API_KEY", destination=destination)
    assert OTHER not in str(info.value)


def test_configured_secrets_resolve_from_the_environment(tmp_path: Path) -> None:
    vault = vault_for(
        tmp_path,
        {"MY_API_KEY": OTHER, "WAREHOUSE_URL": f"postgresql://me:{OTHER}@db.example.com:5432/w"},
        secrets={"MY_API_KEY": ["api.example.com"], "WAREHOUSE_URL": []},
    )
    assert vault.credential_value("secret://MY_API_KEY", destination="https://api.example.com")
    url = vault.url_credential("secret://WAREHOUSE_URL")
    assert url.endswith("@db.example.com:5432/w")
    with pytest.raises(SecretError, match=re.escape("db.example.com:5432 only")) as info:
        vault.credential("secret://WAREHOUSE_URL", destination="https://huggingface.co")
    assert OTHER not in str(info.value)
    with pytest.raises(SecretError, match="not a URL"):
        vault.url_credential("secret://MY_API_KEY")
    infos = {info.name: info for info in vault.infos()}
    assert infos["WAREHOUSE_URL"].hosts == ["db.example.com:5432"]
    assert infos["MY_API_KEY"].declared_by == "configuration"
    bad = vault_for(tmp_path, {}, secrets={"HF_TOKEN": ["evil.example"]})
    with pytest.raises(SecretError, match="MLTRAINER_SECRETS declares 'HF_TOKEN'"):
        bad.infos()


def test_a_registered_name_never_releases_the_environment_variable(tmp_path: Path) -> None:
    """Registering OPENAI_API_KEY (bound to the attacker's host) must not send the server's
    own OPENAI_API_KEY there: registered secrets come from the secrets file only."""
    vault = vault_for(tmp_path, {"OPENAI_API_KEY": OTHER})
    stored = vault.set("OPENAI_API_KEY", "typed-by-person-1", ["evil.example"])
    assert stored.overridden_by == []
    sent = vault.credential("secret://OPENAI_API_KEY", destination="https://evil.example")
    assert sent == {"OPENAI_API_KEY": "typed-by-person-1"}
    assert "not used" in (vault.info("OPENAI_API_KEY").note or "")


# -- storing --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("false", "shorter than 8"),
        ("4096", "shorter than 8"),
        ("12345678901234", "a number"),
        ("password", "common word"),
        ("aaaaaaaaaaaa", "distinct characters"),
        (" padded-value-123", "white space"),
    ],
)
def test_values_that_cannot_be_masked_are_refused_with_the_reason(
    tmp_path: Path, value: str, why: str
) -> None:
    vault = vault_for(tmp_path, {})
    with pytest.raises(SecretError, match=why):
        vault.set("MY_API_KEY", value, ["api.example.com"])
    assert not vault.path.exists()


def test_storing_needs_somewhere_to_go_and_respects_fixed_hosts(tmp_path: Path) -> None:
    vault = vault_for(tmp_path, {})
    with pytest.raises(SecretError, match="Name the host"):
        vault.set("MY_API_KEY", OTHER)
    with pytest.raises(
        SecretError, match=re.escape("huggingface.co only; its hosts are set by its service")
    ):
        vault.set("HF_TOKEN", CANARY, ["evil.example"])
    with pytest.raises(SecretError, match="KAGGLE_USERNAME \\+ KAGGLE_KEY"):
        vault.set("KAGGLE", OTHER)
    with pytest.raises(SecretError, match="not a host"):
        vault.set("MY_API_KEY", OTHER, ["https://api.example.com/path"])
    url = vault.set("MY_DB", f"mysql://me:{OTHER}@db.example.com/x")
    assert url.hosts == ["db.example.com"]
    assert vault.set("KAGGLE_USERNAME", "bob").reference == "secret://KAGGLE"  # not a secret


def test_set_says_when_the_environment_overrides_the_stored_value(tmp_path: Path) -> None:
    vault = vault_for(tmp_path, {"HF_TOKEN": CANARY})
    stored = vault.set("HF_TOKEN", "hf_storedStoredStored0123456")
    assert stored.overridden_by == ["HF_TOKEN"]
    assert "takes precedence" in stored.message
    assert vault.credential_value("secret://HF_TOKEN", destination="https://huggingface.co") == (
        CANARY
    )
    assert vault.info("HF_TOKEN").note == "the environment overrides the stored value"


def test_vault_stores_privately_and_never_lists_values(tmp_path: Path) -> None:
    vault = vault_for(tmp_path, {"HF_TOKEN": CANARY, "KAGGLE_API_TOKEN": "kgat_x1234567890abcdef"})
    vault.set("MY_DB", "pw-12345678", ["db.example.com"])
    assert stat.S_IMODE(vault.path.stat().st_mode) == 0o600
    assert vault.credential_value("secret://MY_DB", destination="https://db.example.com")
    listing = json.dumps([info.model_dump() for info in vault.infos()])
    assert CANARY not in listing and "pw-12345678" not in listing
    by_name = {i.name: i for i in vault.infos()}
    assert by_name["MY_DB"].source == "file" and by_name["MY_DB"].hosts == ["db.example.com"]
    assert vault.delete("MY_DB") and not vault.delete("MY_DB")


def test_a_secrets_file_from_before_hosts_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "home" / "secrets.json"
    path.parent.mkdir()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, json.dumps({"HF_TOKEN": CANARY, "OLD_KEY": OTHER}).encode())
    os.close(fd)
    vault = vault_for(tmp_path, {})
    assert vault.credential_value("secret://HF_TOKEN", destination="https://huggingface.co")
    with pytest.raises(SecretError, match="bound to no host"):
        vault.credential("secret://OLD_KEY", destination="https://api.example.com")


def test_world_readable_secrets_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    path.write_text('{"X_TOKEN": "abcdefgh"}')
    os.chmod(path, 0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        SecretVault(path, environ={}, settings=Settings(home=tmp_path)).info("HF_TOKEN")


def _store_many(home: str, prefix: str, count: int) -> None:
    vault = SecretVault.for_settings(Settings(home=Path(home)), {})
    for i in range(count):
        vault.set(f"{prefix}_{i}", f"value-{prefix}-{i:04d}", ["api.example.com"])


def test_concurrent_entries_from_several_processes_all_survive(tmp_path: Path) -> None:
    """Regression: set() was an unlocked read-modify-write; two writers lost each other's."""
    home = str(tmp_path / "home")
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_store_many, args=(home, prefix, 25))
        for prefix in ("ALPHA", "BRAVO", "CHARLIE")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    names = {info.name for info in vault_for(tmp_path, {}).infos()}
    expected = {f"{p}_{i}" for p in ("ALPHA", "BRAVO", "CHARLIE") for i in range(25)}
    assert expected <= names


# -- the masker -----------------------------------------------------------------------------
def test_masker_covers_every_encoding_and_the_reversed_form() -> None:
    masker = Masker({"HF_TOKEN": CANARY})
    for form in [*leaked_forms(CANARY), json.dumps({"t": CANARY})]:
        assert CANARY not in masker.mask(form)
        assert form not in masker.mask(form)
    for prefix in ("", "a", "ab"):
        encoded = base64.b64encode((prefix + CANARY + "tail").encode()).decode()
        assert "***HF_TOKEN***" in masker.mask(encoded)


def test_masker_masks_dictionary_keys() -> None:
    masker = Masker({"HF_TOKEN": CANARY})
    masked = masker.mask_obj(
        {"rows": [{f"proba_{CANARY}": 0.4, "proba_no": 0.6, "***HF_TOKEN***x": 1}]}
    )
    assert CANARY not in json.dumps(masked)
    assert masked == {
        "rows": [{"proba_***HF_TOKEN***": 0.4, "proba_no": 0.6, "***HF_TOKEN***x": 1}]
    }
    both = masker.mask_obj({CANARY: 1, "***HF_TOKEN***": 2})
    assert sorted(both.values()) == [1, 2]  # neither silently replaced the other


def test_values_too_short_or_common_are_not_masked() -> None:
    """Regression: an environment secret of `false` blanked every false and broke the JSON."""
    masker = Masker(
        {"FLAG_TOKEN": "false", "PORT_SECRET": "4096", "SHORT_KEY": "abc", "X": "password"}
    )
    text = json.dumps({"ok": False, "n": 4096, "label": "abc", "p": "password"})
    assert masker.mask(text) == text
    assert json.loads(masker.mask(text))


def test_log_exception_tracebacks_are_masked() -> None:
    """Regression: the filter masked record.exc_text before the formatter filled it, so the
    traceback of log.exception reached the log unmasked."""
    from mltrainer.server.masking import MaskingFilter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(MaskingFilter(Masker({"HF_TOKEN": CANARY})))
    log = logging.getLogger("test.masking.exc_text")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise RuntimeError(f"bad token {CANARY} / {CANARY[::-1]}")
        except RuntimeError:
            log.exception("while using %s", CANARY)
        log.warning("stack", stack_info=True, extra={"x": CANARY})
    finally:
        log.removeHandler(handler)
    written = stream.getvalue()
    assert "Traceback" in written and "RuntimeError" in written
    assert written.count("***HF_TOKEN***") >= 3
    for form in leaked_forms(CANARY):
        assert form not in written


@hsettings(max_examples=200, deadline=None)
@given(
    before=st.text(max_size=30),
    after=st.text(max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
    form=st.sampled_from(sorted(encoded_forms(CANARY))),
)
def test_stream_masker_masks_secrets_split_across_chunks(
    before: str, after: str, cuts: list[int], form: str
) -> None:
    masker = Masker({"HF_TOKEN": CANARY})
    text = before + form + after
    points = sorted({min(c, len(text)) for c in cuts})
    chunks = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    stream = masker.stream()
    out = "".join(stream.feed(chunk) for chunk in chunks) + stream.flush()
    assert out == masker.mask(text)
    assert form not in out


# -- through MCP ----------------------------------------------------------------------------
@pytest.mark.anyio
async def test_canary_never_leaves_the_server(
    settings: Settings, tmp_path: Path, monkeypatch
) -> None:
    """A secret in the environment appears in no tool result, no event, no database byte."""
    monkeypatch.setenv("HF_TOKEN", CANARY)
    data = tmp_path / "data.csv"
    data.write_text(
        f"x,{CANARY},label\n" + "".join(f"{i},{i % 3},{'ab'[i % 2]}\n" for i in range(200))
    )
    outputs: list[str] = []
    async with connect("memory", settings) as client:
        for args in (
            {"dataset": str(tmp_path / f"{CANARY}.csv"), "target": "label"},
            {"dataset": str(data), "target": CANARY},
            {"dataset": str(data), "target": "label", "instructions": f"use {CANARY}"},
        ):
            result = await train_until_done(client, {**args, "time_budget_s": 10})
            outputs.append(result.model_dump_json())
        jobs = payload(await client.call_tool("list_jobs", {}))
        outputs.append(json.dumps(jobs))
        for job in jobs["jobs"]:
            log = await client.read_resource(f"mltrainer://jobs/{job['job_id']}/log")
            outputs.append(log.contents[0].text)
        outputs.append((await client.call_tool("list_secrets", {})).model_dump_json())
        # Read the database while the server holds it open, write-ahead log included.
        files = {p.name: p.read_bytes() for p in settings.home.glob("mltrainer.db*") if p.is_file()}
    assert {"mltrainer.db", "mltrainer.db-wal"} <= set(files)
    files.update(
        {p.name: p.read_bytes() for p in settings.home.glob("mltrainer.db*") if p.is_file()}
    )
    blob = "\n".join(outputs)
    assert "***HF_TOKEN***" in blob  # it was there to leak, and was masked
    for form in leaked_forms(CANARY):
        assert form not in blob, form
        for name, content in files.items():
            assert form.encode() not in content, (form, name)


@pytest.mark.anyio
async def test_list_secrets_shows_sources_and_hosts_not_values(
    settings: Settings, monkeypatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", CANARY)
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    async with connect("memory", settings) as client:
        result = await client.call_tool("list_secrets", {})
        by_name = {s["name"]: s for s in payload(result)["secrets"]}
        assert by_name["HF_TOKEN"]["source"] == "env" and by_name["HF_TOKEN"]["valid"]
        assert by_name["HF_TOKEN"]["hosts"] == ["huggingface.co"]
        assert not by_name["KAGGLE"]["valid"]
        assert CANARY not in result.model_dump_json()


@pytest.mark.anyio
async def test_set_secret_by_url_elicitation(settings: Settings) -> None:
    """The client opens the one-time page like a person would; the value never crosses MCP."""
    from mcp.types import ElicitResult

    seen: dict[str, str] = {}

    async def on_elicit(context, params):
        url = params.url
        seen["url"] = url
        with urllib.request.urlopen(url, timeout=30) as page:
            form = page.read().decode()
        assert 'type="password"' in form and 'value="api.example.com"' in form
        body = urllib.parse.urlencode({"value": "s3cr3t-value-42", "hosts": "api.example.com"})
        with urllib.request.urlopen(url, data=body.encode(), timeout=30) as done:
            assert done.status == 200
        return ElicitResult(action="accept")

    async with connect("memory", settings, elicitation_callback=on_elicit) as client:
        result = await client.call_tool(
            "set_secret", {"name": "MY_TOKEN", "hosts": ["api.example.com"]}
        )
        outcome = payload(result)
        assert outcome["status"] == "set" and outcome["hosts"] == ["api.example.com"]
        assert "s3cr3t-value-42" not in result.model_dump_json()
        assert seen["url"].startswith("http://127.0.0.1:")
        with pytest.raises(urllib.error.HTTPError):  # one-time: the link is gone
            urllib.request.urlopen(seen["url"], timeout=30)
        listing = payload(await client.call_tool("list_secrets", {}))
        assert {s["name"]: s["valid"] for s in listing["secrets"]}["MY_TOKEN"]
        assert (await client.call_tool("set_secret", {"name": "../etc"})).is_error
        refused = await client.call_tool("set_secret", {"name": "KAGGLE"})
        assert "KAGGLE_USERNAME + KAGGLE_KEY" in error_text(refused)
        rebind = await client.call_tool(
            "set_secret", {"name": "HF_TOKEN", "hosts": ["evil.example"]}
        )
        assert "huggingface.co only" in error_text(rebind)
    vault = SecretVault.for_settings(settings, environ={})
    assert vault.credential_value("secret://MY_TOKEN", destination="https://api.example.com") == (
        "s3cr3t-value-42"
    )


@pytest.mark.anyio
async def test_set_secret_reports_an_environment_override(settings: Settings, monkeypatch) -> None:
    """Regression: set_secret reported success while the environment value kept winning."""
    from mcp.types import ElicitResult

    monkeypatch.setenv("HF_TOKEN", CANARY)
    messages: list[str] = []

    async def on_elicit(context, params):
        messages.append(params.message)
        body = urllib.parse.urlencode({"value": "hf_typedByThePerson0123456789"}).encode()
        with urllib.request.urlopen(params.url, data=body, timeout=30) as done:
            assert done.status == 200 and b"takes precedence" in done.read()
        return ElicitResult(action="accept")

    async with connect("memory", settings, elicitation_callback=on_elicit) as client:
        outcome = payload(await client.call_tool("set_secret", {"name": "HF_TOKEN"}))
    assert outcome["status"] == "overridden"
    assert "HF_TOKEN" in outcome["message"] and "takes precedence" in outcome["message"]
    assert "takes precedence" in messages[0]  # the person is told before typing, too


def test_list_flags_values_that_do_not_look_like_the_credential(tmp_path: Path) -> None:
    vault = vault_for(
        tmp_path,
        {
            "HF_TOKEN": "ghp_notahuggingfacetoken",
            "MODAL_TOKEN_ID": "ak-12345678",
            "MODAL_TOKEN_SECRET": "as-12345678",
        },
    )
    infos = {info.name: info for info in vault.infos()}
    assert not infos["HF_TOKEN"].valid and "hf_" in (infos["HF_TOKEN"].problem or "")
    assert infos["MODAL"].valid and infos["MODAL"].fields == [
        "MODAL_TOKEN_ID",
        "MODAL_TOKEN_SECRET",
    ]
    assert "ghp_notahuggingfacetoken" not in repr(infos)
