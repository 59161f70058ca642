"""The read-back chains of issue #9 through a real MCP client, with canary secrets planted
where real ones would be: attack 1 (the stored secrets read back through a profile),
attack 3 (credential files read through the data tools, with the working directory at / and
at home), attack 5's truncated values in profiles, and attack 9 (state readable by others).

Every test ends by scanning what came back and every file under the state directory
(database and -wal bytes included) for each canary in every form (tests/canary.py), and by
calling the server once more to show it keeps serving.
"""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from canary import Canary
from conftest import (
    connect,
    error_text,
    payload,
    train_until_done,
    write_classification_csv,
)

from mltrainer.state.settings import Settings


@pytest.fixture
def stored(home: Path) -> Canary:
    """A secret stored the way `mltrainer secrets set` stores it: in secrets.json."""
    canary = Canary.make("STORED_KEY", prefix="sk-")
    canary.store(home)
    return canary


@pytest.fixture
def env_token(monkeypatch: pytest.MonkeyPatch) -> Canary:
    canary = Canary.make("HF_TOKEN", prefix="hf_")
    monkeypatch.setenv("HF_TOKEN", canary.value)
    return canary


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Canary]:
    """A home directory with AWS and Kaggle credential files. Their key is known to no
    masker: only the path guard stands between it and the caller."""
    home_dir = tmp_path / "user"
    key = Canary.make("AWS_KEY")
    (home_dir / ".aws").mkdir(parents=True)
    (home_dir / ".aws" / "credentials").write_text(
        f"aws_access_key_id,aws_secret_access_key\nAKIAEXAMPLE,{key.value}\n"
    )
    (home_dir / ".kaggle").mkdir()
    (home_dir / ".kaggle" / "kaggle.json").write_text(f'{{"username": "me", "key": "{key.value}"}}')
    monkeypatch.setenv("HOME", str(home_dir))
    return home_dir, key


def texts(result: Any) -> list[str | bytes]:
    """Everything a tool result carries: text, structured content and image bytes."""
    out: list[str | bytes] = [repr(result.structured_content)]
    for block in result.content:
        if getattr(block, "type", "") == "image":
            out.append(base64.b64decode(block.data))
        else:
            out.append(getattr(block, "text", ""))
    return out


# -- attack 1: the secrets file, profiled, then shown to the sandbox -------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["memory", "stdio", "http"])
async def test_the_secrets_file_cannot_be_profiled_on_any_transport(
    transport: str, settings: Settings, stored: Canary, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("http_server") if transport == "http" else None
    seen: list[str | bytes] = []
    async with connect(transport, settings, url) as client:
        for path in (str(settings.secrets_path), "home/secrets.json", "home"):
            result = await client.call_tool("profile_dataset", {"dataset": path})
            assert "state or credentials" in error_text(result), path
            seen += texts(result)
        assert payload(await client.call_tool("list_jobs", {}))["count"] == 0
    stored.assert_absent(settings.home, *seen)


@pytest.mark.anyio
async def test_profiles_and_state_are_not_shown_to_the_sandbox(
    settings: Settings, stored: Canary, env_token: Canary, tmp_path: Path
) -> None:
    settings.sandbox = "process"  # the refusal comes before any backend runs
    (tmp_path / "d.csv").write_text("a,b\n1,2\n3,4\n")
    seen: list[str | bytes] = []
    async with connect("memory", settings) as client:
        profile = payload(await client.call_tool("profile_dataset", {"dataset": "d.csv"}))
        profile_json = settings.home / "profiles" / profile["profile_id"] / "profile.json"
        for files in ([str(settings.secrets_path)], [str(profile_json)], ["."], ["home"]):
            result = await client.call_tool("run_code", {"code": "print(1)", "files": files})
            assert "state or credentials" in error_text(result), files
            seen += texts(result)
        ran = payload(await client.call_tool("run_code", {"code": "print(6 * 7)"}))
    assert ran["stdout"].strip() == "42"
    for canary in (stored, env_token):
        canary.assert_absent(settings.home, *seen)


# -- attack 3: credential files through every tool that takes a path ------------------------
CREDENTIALS = ["~/.aws/credentials", "~/.kaggle/kaggle.json"]


@pytest.fixture
def trained(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    return write_classification_csv(data / "train.csv", rows=60)


@pytest.mark.anyio
async def test_credential_files_are_refused_by_every_tool(
    settings: Settings,
    stored: Canary,
    user: tuple[Path, Canary],
    trained: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Claude Desktop on macOS starts servers in /; others start them in the home directory.
    Neither is a data root then; the data lives under MLTRAINER_DATA_ROOTS."""
    home_dir, key = user
    settings.data_roots = [trained.parent]
    settings.sandbox = "process"  # the refusals come before any backend runs
    targets = [*CREDENTIALS, str(settings.secrets_path), "/etc/passwd"]
    seen: list[str | bytes] = []
    async with connect("memory", settings) as client:
        job = payload(
            await train_until_done(
                client, {"dataset": str(trained), "target": "label", "time_budget_s": 5}
            )
        )
        assert job["model_id"], job
        for cwd, where in [("/", "the file-system root"), (home_dir, "your home directory")]:
            monkeypatch.chdir(cwd)
            for target in targets:
                calls = {
                    "profile_dataset": {"dataset": target},
                    "train_model": {"dataset": target, "target": "key", "wait_s": 0},
                    "predict": {"model": job["model_id"], "dataset": target},
                    "download_dataset": {"ref": target},
                    "run_code": {"code": "print(1)", "files": [target]},
                }
                for tool, arguments in calls.items():
                    result = await client.call_tool(tool, arguments)
                    message = error_text(result)
                    assert "Refusing" in message, (cwd, tool, target, message)
                    if target == "/etc/passwd":
                        assert where in message and "MLTRAINER_DATA_ROOTS" in message
                    seen += texts(result)
        predicted = await client.call_tool(
            "predict", {"model": job["model_id"], "dataset": str(trained)}
        )
        assert payload(predicted)["n_rows"] == 60
    for canary in (key, stored):
        canary.assert_absent(settings.home, *seen)


# -- attack 5, profiles: values shown shortened are masked before they are cut ---------------
@pytest.mark.anyio
async def test_a_profile_shows_no_secret_not_even_a_cut_off_prefix(
    settings: Settings, stored: Canary, tmp_path: Path
) -> None:
    """A 64-character secret in the data: as a category (examples and top values are cut to
    60 characters), as the target's class, and as a column name (a plot label)."""
    rows = ["id,colour,label,x," + stored.value]
    for i in range(40):
        colour = stored.value if i % 3 == 0 else "red"
        label = stored.value if i % 2 else "no"
        rows.append(f"{i},{colour},{label},{(i * 7) % 5},{i * 1.5}")
    (tmp_path / "leaky.csv").write_text("\n".join(rows) + "\n")
    seen: list[str | bytes] = []
    async with connect("memory", settings) as client:
        result = await client.call_tool(
            "profile_dataset", {"dataset": "leaky.csv", "target": "label"}
        )
        profile = payload(result)
        seen += texts(result)
        resource = await client.read_resource(f"mltrainer://profiles/{profile['profile_id']}")
        seen += [getattr(c, "text", "") for c in resource.contents]
    stored.assert_absent(settings.home, *seen)
    examples = {v for c in profile["columns"] for v in c["examples"]}
    assert "***STORED_KEY***" in examples
    assert any(c["value"] == "***STORED_KEY***" for c in profile["target"]["classes"])
    assert len([c for c in result.content if getattr(c, "type", "") == "image"]) >= 2
    assert loose(settings.home / "profiles") == []  # profile.json and plots: 0600 in 0700


# -- attack 9: nothing in the state directory readable by others -----------------------------
def loose(home: Path) -> list[str]:
    """Paths under the state directory that other users could reach: any folder not 0700,
    any file with group or other bits — but a downloaded dataset file, which the sandbox's
    unprivileged user reads (0644 at most, inside the 0700 folders)."""
    found = []
    datasets = home / "datasets"
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        shared = path.is_file() and path.is_relative_to(datasets) and not mode & 0o033
        if not path.is_symlink() and mode & 0o077 and not shared:
            found.append(f"{path.relative_to(home.parent)} {mode:o}")
    return found


@pytest.mark.anyio
async def test_the_state_directory_stays_private_through_profile_train_predict(
    settings: Settings, trained: Path, tmp_path: Path
) -> None:
    async with connect("stdio", settings) as client:
        payload(await client.call_tool("profile_dataset", {"dataset": str(trained)}))
        job = payload(
            await train_until_done(
                client, {"dataset": str(trained), "target": "label", "time_budget_s": 5}
            )
        )
        out = payload(
            await client.call_tool("predict", {"model": job["model_id"], "dataset": str(trained)})
        )
    assert Path(out["predictions_path"]).is_file()
    assert loose(settings.home) == []


def test_a_loose_state_directory_is_tightened_at_start(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from mltrainer.state.files import tighten_state_dir

    settings.home.mkdir(mode=0o755)
    (settings.home / "profiles" / "prof_1").mkdir(parents=True, mode=0o755)
    (settings.home / "profiles" / "prof_1" / "profile.json").write_text("{}")
    os.chmod(settings.home / "profiles" / "prof_1" / "profile.json", 0o644)
    (settings.home / "predict.py").write_text("")
    os.chmod(settings.home / "predict.py", 0o755)
    (settings.home / "link").symlink_to("/etc/passwd")
    changed = tighten_state_dir(settings)
    assert loose(settings.home) == []
    assert stat.S_IMODE((settings.home / "predict.py").stat().st_mode) == 0o700
    assert stat.S_IMODE(settings.db_path.stat().st_mode) == 0o600  # created private
    assert stat.S_IMODE(Path("/etc/passwd").stat().st_mode) & 0o044  # the link not followed
    assert len(changed) == 5 and "tightened the permissions of 5 path(s)" in caplog.text
    assert tighten_state_dir(settings) == []


def test_under_the_private_umask_new_files_and_folders_are_private(tmp_path: Path) -> None:
    from mltrainer.state.files import private_umask

    previous = private_umask()
    try:
        (tmp_path / "made" / "deeper").mkdir(parents=True)
        (tmp_path / "made" / "deeper" / "file.csv").write_text("a\n")
    finally:
        os.umask(previous)
    assert loose(tmp_path / "made") == []
