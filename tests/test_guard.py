"""The one path and URL policy (mltrainer.state.guard), rule by rule.

The tools that use it are tested through MCP in test_security_paths.py and
test_datasets_downloads.py; here each rule is shown to hold on its own, including where the
roots would otherwise allow the path.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest

from mltrainer.state import guard
from mltrainer.state.errors import NotFound, PermissionDenied
from mltrainer.state.guard import PathPolicy, address_kind, allowed_addresses, check_path
from mltrainer.state.settings import Settings

CREDENTIAL_FILES = [
    ".ssh/id_ed25519",
    ".aws/credentials",
    ".kaggle/kaggle.json",
    ".config/gcloud/application_default_credentials.json",
    ".netrc",
    ".docker/config.json",
    ".modal.toml",
    ".config/modal/token",
    ".gnupg/private-keys-v1.d/key",
    ".git-credentials",
    ".pgpass",
    ".cache/huggingface/token",
    ".huggingface/token",
]
STATE_FILES = [
    "secrets.json",
    "http_token",
    "mltrainer.db",
    "mltrainer.db-wal",
    "mltrainer.db-shm",
    "profiles/prof_1/profile.json",
    "models/mdl_1/meta.json",
    "sandbox/sessions/s/out.txt",
]


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake home directory holding every kind of credential file."""
    home = tmp_path / "user"
    for name in CREDENTIAL_FILES:
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text("a,b\nkey,value\n")
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def state(settings: Settings) -> Settings:
    for name in STATE_FILES:
        (settings.home / name).parent.mkdir(parents=True, exist_ok=True)
        (settings.home / name).write_text("a,b\n1,2\n")
    (settings.datasets_dir / "ds_000000000001").mkdir(parents=True)
    (settings.datasets_dir / "ds_000000000001" / "train.csv").write_text("a,b\n1,2\n")
    return settings


def refused(text: str, settings: Settings, match: str = "state or credentials") -> str:
    with pytest.raises(PermissionDenied, match=match) as info:
        check_path(text, settings)
    return str(info.value)


@pytest.mark.parametrize("name", CREDENTIAL_FILES)
def test_credential_stores_are_refused_even_under_a_data_root(
    name: str, user: Path, settings: Settings
) -> None:
    settings.data_roots = [Path("/")]  # every path is under a root: only the deny-list holds
    refused(f"~/{name}", settings)
    refused(str(user / name), settings)


@pytest.mark.parametrize("name", STATE_FILES)
def test_the_state_directory_is_refused_except_its_datasets(
    name: str, state: Settings, tmp_path: Path
) -> None:
    state.data_roots = [Path("/")]
    refused(str(state.home / name), state, match=r"state directory \(only its datasets/")
    assert check_path(str(state.datasets_dir / "ds_000000000001" / "train.csv"), state).is_file()


def test_the_state_directory_itself_and_links_into_it_are_refused(
    state: Settings, tmp_path: Path
) -> None:
    refused(str(state.home), state)  # under the current directory, a root in these tests
    (tmp_path / "innocent.csv").symlink_to(state.secrets_path)
    refused("innocent.csv", state)  # lexically fine; refused once the link is resolved


@pytest.mark.parametrize(
    "path",
    [
        "/proc/self/environ",
        "/sys/kernel/notes",
        "/dev/null",
        "/etc/shadow",
        "/etc/gshadow",
        "/etc/sudoers",
        "/etc/ssh/ssh_host_ed25519_key",
    ],
)
def test_system_files_are_refused_even_under_a_data_root(path: str, settings: Settings) -> None:
    settings.data_roots = [Path("/")]
    refused(path, settings)


@pytest.mark.parametrize("name", [".env", "project/.env.local", "keys/id_rsa", "x/.aws/config"])
def test_names_that_hold_credentials_are_refused_anywhere(
    name: str, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text("TOKEN=x\n")
    refused(name, settings)


def test_the_current_directory_is_no_root_when_it_is_the_file_system_root(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir("/")
    message = refused("etc/passwd", settings, match="is outside the folders")
    assert "is the file-system root" in message and "MLTRAINER_DATA_ROOTS" in message
    assert refused("/etc/passwd", settings, match="is outside") == message.replace(
        "'etc/passwd'", "'/etc/passwd'"
    )


def test_the_current_directory_is_no_root_when_it_is_the_home_directory(
    user: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    (user / "data.csv").write_text("a,b\n1,2\n")
    monkeypatch.chdir(user)
    message = refused("data.csv", settings, match="is outside the folders")
    assert "is your home directory" in message and "MLTRAINER_DATA_ROOTS" in message
    settings.data_roots = [user]  # the person's explicit choice works, the deny-list stays
    assert check_path("data.csv", settings) == (user / "data.csv").resolve()
    refused(".aws/credentials", settings)


def test_a_project_directory_is_a_root_and_absence_is_no_oracle(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "data.csv").write_text("a\n1\n")
    assert check_path("data.csv", settings) == (tmp_path / "data.csv").resolve()
    with pytest.raises(NotFound):
        check_path("missing.csv", settings)
    # Outside the roots, a missing file and an existing one get the same refusal.
    assert refused("/etc/passwd", settings, match="outside") == refused(
        "/etc/passwd-nope", settings, match="outside"
    ).replace("passwd-nope", "passwd")


def test_links_out_of_the_roots_are_refused(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "escape.csv").symlink_to("/etc/passwd")
    refused("escape.csv", settings, match="links to a place outside the folders")


def test_traversal_is_refused_before_the_filesystem(settings: Settings) -> None:
    refused("data/../../etc/passwd", settings, match=r"'\.\.' components are not allowed")


def test_case_insensitive_file_systems_compare_folded(
    user: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(guard, "CASE_INSENSITIVE", True)  # as on macOS and Windows
    settings.data_roots = [Path("/")]
    refused("~/.AWS/credentials", settings)  # refused on the text, before the filesystem
    refused(str(user).upper() + "/.SSH/ID_ED25519", settings)
    refused(str(settings.home / "Secrets.JSON"), settings)
    (tmp_path / "x").mkdir()
    refused("x/.ENV", settings)


def test_a_folder_shown_whole_may_hold_nothing_refused(
    state: Settings, tmp_path: Path, user: Path
) -> None:
    policy = PathPolicy(state)
    with pytest.raises(PermissionDenied, match="state directory"):
        policy.check_tree(tmp_path, "the project")  # it holds the state directory
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    (project / "data.csv").write_text("a\n1\n")
    policy.check_tree(project, "project")
    (project / "sub" / ".env").write_text("KEY=x\n")
    with pytest.raises(PermissionDenied, match=r"\.env', a name that holds credentials"):
        policy.check_tree(project, "project")
    assert policy.visible(project, ["data.csv", "sub/.env"]) == ["data.csv"]
    state.data_roots = [user]
    with pytest.raises(PermissionDenied, match="credential store"):
        PathPolicy(state).check_tree(user, "~")


def test_a_file_inside_a_dataset_cannot_lead_out_of_it(state: Settings, user: Path) -> None:
    folder = state.datasets_dir / "ds_000000000001"
    (folder / "keys.csv").symlink_to(user / ".aws" / "credentials")
    (folder / "passwd.csv").symlink_to("/etc/passwd")
    (folder / "other.csv").symlink_to(state.datasets_dir / "ds_000000000001" / "train.csv")
    policy = PathPolicy(state)
    with pytest.raises(PermissionDenied, match="credential store"):
        policy.check_member(folder, "keys.csv")
    with pytest.raises(PermissionDenied, match="outside"):
        policy.check_member(folder, "passwd.csv")
    assert policy.check_member(folder, "other.csv").name == "train.csv"


# -- URLs ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local (cloud metadata)"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
        ("64:ff9b::a01:203", "private"),  # NAT64 of 10.1.2.3
        ("2002:a01:203::1", "private"),  # 6to4 of 10.1.2.3
        ("93.184.216.34", None),
        ("2606:2800:220:1::1", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "169.254.169.254", "fe80::1", "10.0.0.1", "0.0.0.0", "224.0.0.1"]
)
def test_https_to_non_public_addresses_only_when_allowed(address: str, settings: Settings) -> None:
    with pytest.raises(PermissionDenied, match="MLTRAINER_ALLOW_PRIVATE_URLS"):
        allowed_addresses(address, 443, "https", settings)
    settings.allow_private_urls = True
    assert allowed_addresses(address, 443, "https", settings) == [address]


def test_plain_http_only_to_loopback_and_only_when_allowed(settings: Settings) -> None:
    with pytest.raises(PermissionDenied, match="only https"):
        guard.check_scheme("http://127.0.0.1:8000/a.csv", settings)
    with pytest.raises(PermissionDenied, match="MLTRAINER_ALLOW_LOOPBACK_HTTP"):
        allowed_addresses("127.0.0.1", 80, "http", settings)
    settings.allow_loopback_http = True
    assert guard.check_scheme("http://127.0.0.1:8000/a.csv", settings) == (
        "http",
        "127.0.0.1",
        8000,
    )
    assert allowed_addresses("127.0.0.1", 80, "http", settings) == ["127.0.0.1"]
    settings.allow_private_urls = True  # private https does not make private http acceptable
    for address in ("10.0.0.1", "93.184.216.34"):
        with pytest.raises(PermissionDenied, match="loopback only"):
            allowed_addresses(address, 80, "http", settings)
    for url in ("ftp://x/a", "file:///etc/passwd", "https://", "gopher://127.0.0.1/"):
        with pytest.raises(PermissionDenied, match="only https"):
            guard.check_scheme(url, settings)


def test_the_decision_is_made_on_every_resolved_address(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {
        "inside.example": ["10.1.2.3"],
        "mixed.example": ["93.184.216.34", "127.0.0.1"],
        "public.example": ["93.184.216.34", "2606:2800:220:1::1"],
    }

    def fake_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list:
        family = lambda a: socket.AF_INET6 if ":" in a else socket.AF_INET  # noqa: E731
        return [(family(a), socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(PermissionDenied, match=r"resolves to 10\.1\.2\.3, a private address"):
        allowed_addresses("inside.example", 443, "https", settings)
    with pytest.raises(PermissionDenied, match=r"resolves to 127\.0\.0\.1, a loopback address"):
        allowed_addresses("mixed.example", 443, "https", settings)
    assert allowed_addresses("public.example", 443, "https", settings) == answers["public.example"]


def test_a_host_that_does_not_resolve_is_a_clear_error(settings: Settings) -> None:
    from mltrainer.state.errors import RemoteServiceError

    with pytest.raises(RemoteServiceError, match=r"Cannot resolve the host 'nothing\.invalid'"):
        allowed_addresses("nothing.invalid", 443, "https", settings)
