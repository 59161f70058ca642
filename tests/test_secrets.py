"""Secret references, the vault, the masker, set_secret, and a canary that must never leak."""

from __future__ import annotations

import base64
import json
import os
import stat
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import connect, payload, train_until_done
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from mltrainer.state.errors import SecretError
from mltrainer.state.masking import Masker, encoded_forms
from mltrainer.state.secrets import SecretVault, parse_reference
from mltrainer.state.settings import Settings

CANARY = "hf_CANARYcanary0123456789abcdefXYZ"


def leaked_forms(value: str) -> list[str]:
    raw = value.encode()
    return [
        value,
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        urllib.parse.quote(value),
    ]


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


def test_vault_resolves_env_and_file_and_never_lists_values(tmp_path: Path) -> None:
    vault = SecretVault(
        tmp_path / "secrets.json", environ={"HF_TOKEN": CANARY, "KAGGLE_API_TOKEN": "kgat_x123"}
    )
    assert vault.resolve("secret://HF_TOKEN") == {"HF_TOKEN": CANARY}
    assert vault.resolve("secret://KAGGLE") == {"KAGGLE_API_TOKEN": "kgat_x123"}
    vault.set("MY_DB", "pw-123456")
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
    assert vault.resolve_one("secret://MY_DB") == "pw-123456"
    listing = json.dumps([info.model_dump() for info in vault.infos()])
    assert CANARY not in listing and "pw-123456" not in listing
    assert {i.name: i.source for i in vault.infos()}["MY_DB"] == "file"
    with pytest.raises(SecretError, match="mltrainer secrets set MODAL"):
        vault.resolve("secret://MODAL")


def test_world_readable_secrets_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    path.write_text('{"X_TOKEN": "abcdefgh"}')
    os.chmod(path, 0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        SecretVault(path, environ={}).resolve("secret://X_TOKEN")


def test_masker_covers_every_encoding() -> None:
    masker = Masker({"HF_TOKEN": CANARY})
    for form in [*leaked_forms(CANARY), json.dumps({"t": CANARY})]:
        assert CANARY not in masker.mask(form)
    for prefix in ("", "a", "ab"):
        encoded = base64.b64encode((prefix + CANARY + "tail").encode()).decode()
        assert "***HF_TOKEN***" in masker.mask(encoded)


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
async def test_list_secrets_shows_sources_not_values(settings: Settings, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", CANARY)
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.delenv("KAGGLE_API_TOKEN", raising=False)
    async with connect("memory", settings) as client:
        result = await client.call_tool("list_secrets", {})
        listing = payload(result)
        by_name = {s["name"]: s for s in listing["secrets"]}
        assert by_name["HF_TOKEN"]["source"] == "env" and by_name["HF_TOKEN"]["valid"]
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
        with urllib.request.urlopen(url, timeout=5) as page:
            assert b'type="password"' in page.read()
        body = urllib.parse.urlencode({"value": "s3cr3t-value-42"}).encode()
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=5) as done:
            assert done.status == 200
        return ElicitResult(action="accept")

    async with connect("memory", settings, elicitation_callback=on_elicit) as client:
        result = await client.call_tool("set_secret", {"name": "MY_TOKEN"})
        assert payload(result)["status"] == "set"
        assert "s3cr3t-value-42" not in result.model_dump_json()
        assert seen["url"].startswith("http://127.0.0.1:")
        # one-time: the link is gone
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(seen["url"], timeout=5)
        listing = payload(await client.call_tool("list_secrets", {}))
        assert {s["name"]: s["valid"] for s in listing["secrets"]}["MY_TOKEN"]
        bad = await client.call_tool("set_secret", {"name": "../etc"})
        assert bad.is_error
    assert (
        SecretVault(settings.secrets_path, environ={}).resolve_one("secret://MY_TOKEN")
        == "s3cr3t-value-42"
    )


def test_list_flags_values_that_do_not_look_like_the_credential(tmp_path: Path) -> None:
    vault = SecretVault(
        tmp_path / "secrets.json",
        environ={
            "HF_TOKEN": "ghp_notahuggingfacetoken",
            "MODAL_TOKEN_ID": "ak-1",
            "MODAL_TOKEN_SECRET": "as-2",
        },
    )
    infos = {info.name: info for info in vault.infos()}
    assert not infos["HF_TOKEN"].valid and "hf_" in (infos["HF_TOKEN"].problem or "")
    assert infos["MODAL"].valid and infos["MODAL"].fields == [
        "MODAL_TOKEN_ID",
        "MODAL_TOKEN_SECRET",
    ]
    assert "ghp_notahuggingfacetoken" not in repr(infos)
