"""One policy for every local path, dataset file and URL that a tool argument names.

Tool arguments are hostile (the assistant may be following a prompt-injected document), so
profile_dataset, train_model, predict, download_dataset and run_code's ``files`` all ask this
module before they touch a path or open a connection.

Paths
- Readable only under the data roots: ``MLTRAINER_DATA_ROOTS``; the current directory, unless
  it is a file-system root or the home directory itself (Claude Desktop on macOS starts
  servers in ``/``); and, of the state directory, only ``datasets/`` (downloads live there).
- Never readable, whatever the roots say, checked on the text first and again after symlinks
  are resolved: credential stores (``~/.ssh``, ``~/.aws``, ``~/.kaggle``, ...), names that hold
  credentials wherever they are (``.env``, ``id_rsa``, ...), the rest of the state directory
  (secrets, database, bearer token, profiles, models, ...), ``/proc``, ``/sys``, ``/dev`` and
  shadow-like system files. Compared case-folded on macOS and Windows.
- The roots are checked on the resolved path before the file's existence is looked at, so a
  refusal tells nothing about what exists outside them.

URLs
- ``https://`` to public addresses; ``http://`` only to loopback and only with
  ``MLTRAINER_ALLOW_LOOPBACK_HTTP``; loopback, link-local (cloud metadata), private,
  unspecified, multicast and reserved addresses only with ``MLTRAINER_ALLOW_PRIVATE_URLS``.
- Decided on the addresses the host resolves to: ``allowed_addresses`` returns them so that
  the caller connects to exactly those, with no second lookup that DNS rebinding could
  answer differently.

One module on purpose (a little over 400 lines): the whole policy reads in one place.
"""

from __future__ import annotations

import glob
import ipaddress
import os
import re
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase, translate
from pathlib import Path, PurePath
from urllib.parse import urlsplit

from mltrainer.state.errors import InvalidInput, NotFound, PermissionDenied, RemoteServiceError
from mltrainer.state.settings import Settings

CASE_INSENSITIVE = sys.platform in ("darwin", "win32")
MAX_TREE_ENTRIES = 100_000

# Credential stores under the home directory.
HOME_DENIED = (
    ".ssh", ".aws", ".kaggle", ".config/gcloud", ".netrc", "_netrc", ".docker", ".modal.toml",
    ".config/modal", ".gnupg", ".git-credentials", ".pgpass", ".cache/huggingface/token",
    ".huggingface", ".azure", ".kube", ".config/gh", ".config/hub", ".npmrc", ".pypirc", ".boto",
    ".s3cfg", ".config/rclone", ".password-store", ".local/share/keyrings", "Library/Keychains",
    ".terraform.d", ".vault-token",
)  # fmt: skip
# System files and trees (globs; /private/etc is macOS's /etc).
SYSTEM_DENIED = (
    "/proc", "/sys", "/dev", "/etc/shadow*", "/etc/gshadow*", "/etc/sudoers*",
    "/etc/master.passwd", "/etc/ssh/*key*", "/private/etc/master.passwd",
    "/private/etc/sudoers*", "/private/etc/ssh/*key*", "/private/var/db/dslocal",
)  # fmt: skip
# Names that hold credentials wherever they are (any component of a path; globs).
NAMES_DENIED = (
    ".ssh", ".aws", ".gnupg", ".kaggle", ".docker", ".azure", ".kube", ".password-store",
    ".env", ".env.*", ".netrc", "_netrc", ".pgpass", ".git-credentials", ".npmrc", ".pypirc",
    ".modal.toml", "kaggle.json", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    ".*_history", "secrets.json", "http_token", "mltrainer.db*",
)  # fmt: skip
_NAMES = {
    folded: re.compile("|".join(map(translate, NAMES_DENIED)), re.IGNORECASE if folded else 0)
    for folded in (False, True)
}
_GLOB_CHARS = re.compile(r"[*?\[]")
STATE_LABEL = "the server's state directory (only its datasets/ folder is readable)"


def _fold(path: str) -> str:
    return path.casefold() if CASE_INSENSITIVE else path


def _norm(path: str) -> str:
    return os.path.normpath(os.path.abspath(path))


def _within(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


def _ancestors(path: str) -> Iterable[str]:
    pure = PurePath(path)
    yield str(pure)
    for parent in pure.parents:
        yield str(parent)


def _forms(path: str | Path) -> set[str]:
    """The lexical and the resolved form of a path, folded: either may be what a caller gives."""
    lexical = _norm(os.path.expanduser(str(path)))
    return {_fold(lexical), _fold(os.path.realpath(lexical))}


@dataclass(frozen=True)
class Denied:
    pattern: str  # a folded glob over absolute, normalised paths
    label: str

    @property
    def prefix(self) -> str:
        """The literal part of the pattern, to tell whether a directory holds a match."""
        found = _GLOB_CHARS.search(self.pattern)
        return self.pattern if found is None else self.pattern[: found.start()]


def refuse_traversal(text: str) -> str:
    """Refuse '..' before touching the filesystem: a tool names a place, not a way out."""
    if any(part == ".." for part in re.split(r"[\\/]+", text)):
        raise PermissionDenied(
            f"Refusing the path '{text}': '..' components are not allowed.",
            next_step="Give the path without '..', under a data folder (the current directory "
            "unless it is / or your home, the state directory's datasets/, or "
            "MLTRAINER_DATA_ROOTS).",
        )
    return text


def cwd_refusal(cwd: str) -> str | None:
    """Why the current directory is not a data root, or None when it is one."""
    real = os.path.realpath(cwd)
    if Path(real).parent == Path(real):
        return "the file-system root"
    if _fold(real) == _fold(os.path.realpath(os.path.expanduser("~"))):
        return "your home directory"
    return None


def _literal(label: str, path: str) -> list[Denied]:
    """Deny entries for a literal path, in both its forms (glob characters in it escaped)."""
    return [Denied(glob.escape(form), label) for form in _forms(path)]


def _denied_entries() -> list[Denied]:
    home = os.path.expanduser("~")
    entries: list[Denied] = []
    for name in HOME_DENIED:
        entries += _literal(f"a credential store (~/{name})", os.path.join(home, name))
    for var, name in (("HF_HOME", "token"), ("KAGGLE_CONFIG_DIR", "")):
        # Credential locations other libraries are told about through their own variables.
        if os.environ.get(var):
            label = f"a credential store (${var}/{name})"
            entries += _literal(label, os.path.join(os.environ[var], name))
    system = list(SYSTEM_DENIED)
    if os.name == "nt":
        system.append(
            os.path.join(os.environ.get("SYSTEMROOT", r"C:\Windows"), "System32", "config")
        )
    for pattern in system:
        folder, name = os.path.split(pattern)
        real = os.path.join(glob.escape(os.path.realpath(folder)), name)
        entries += [Denied(_fold(form), f"a system file ({pattern})") for form in {pattern, real}]
    return entries


class PathPolicy:
    """The path rules for one call (the current directory and settings may change between
    calls, so a policy is built per call: a few dozen ``realpath``s)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = _forms(settings.home)
        self.datasets = _forms(settings.datasets_dir)
        self.entries = _denied_entries()
        self.cwd = os.getcwd()
        self.cwd_refusal = cwd_refusal(self.cwd)
        roots = [os.path.expanduser(str(r)) for r in settings.data_roots]
        roots.append(str(settings.datasets_dir))
        if self.cwd_refusal is None:
            roots.append(self.cwd)
        self.roots = roots
        self.real_roots = [_fold(os.path.realpath(_norm(root))) for root in roots]
        self.lexical_roots = [form for root in roots for form in _forms(root)]

    # -- what is never read --------------------------------------------------------------
    def denied(self, path: str, entries: list[Denied] | None = None) -> str | None:
        """Why ``path`` (absolute, normalised) may never be read, or None."""
        folded = _fold(path)
        in_state = any(_within(folded, s) for s in self.state)
        if in_state and not any(_within(folded, d) for d in self.datasets):
            return STATE_LABEL
        entries = self.entries if entries is None else entries
        ancestors = list(_ancestors(folded)) if entries else []
        for entry in entries:
            if any(fnmatchcase(a, entry.pattern) for a in ancestors):
                return entry.label
        for part in PurePath(path).parts:
            if _NAMES[CASE_INSENSITIVE].fullmatch(part):
                return f"'{part}', a name that holds credentials"
        return None

    def holds(self, directory: str) -> str | None:
        """What denied place lies inside ``directory``, or None (its own path not included)."""
        folded = _fold(directory).rstrip(os.sep) + os.sep
        for state in self.state:
            if state.startswith(folded):
                return STATE_LABEL
        for entry in self.entries:
            if entry.prefix.startswith(folded):
                return entry.label
        return None

    def _refuse(self, shown: str, label: str) -> PermissionDenied:
        return PermissionDenied(
            f"Refusing '{shown}': it is or holds the server's state or credentials ({label}); "
            "no tool reads it.",
            next_step=f"Pass a data file (CSV, Parquet, JSON lines, Excel) under {self.where()}.",
        )

    # -- where data may come from --------------------------------------------------------
    def in_roots(self, real: str) -> bool:
        return any(_within(_fold(real), root) for root in self.real_roots)

    def where(self) -> str:
        return "one of the data folders: " + ", ".join(self.roots)

    def roots_hint(self) -> str:
        hint = "Move the file under one of them, or have the person add its folder to "
        hint += "MLTRAINER_DATA_ROOTS (a JSON list, e.g. MLTRAINER_DATA_ROOTS='[\"/path/to/data\"]'"
        hint += " in the server's environment: the \"env\" of its entry in the MCP client's "
        hint += "configuration)."
        if self.cwd_refusal:
            hint = (
                f"The server's working directory ({self.cwd}) is {self.cwd_refusal}, so it is "
                f"not a data folder. {hint}"
            )
        return hint

    # -- the checks ----------------------------------------------------------------------
    def check(self, text: str, shown: str | None = None) -> Path:
        """The resolved path of ``text`` once every rule passed; ``shown`` names it in errors."""
        shown = shown or text
        if not text.strip() or "\x00" in text:
            raise InvalidInput(f"Invalid path {shown!r}.", next_step="Pass the path of a file.")
        refuse_traversal(text)
        lexical = _norm(os.path.expanduser(text))
        label = self.denied(lexical)
        if label:
            raise self._refuse(shown, label)
        real = os.path.realpath(lexical)
        label = self.denied(real)
        if label:
            raise self._refuse(shown, label)
        if not self.in_roots(real):
            lexically_in = any(_within(_fold(lexical), root) for root in self.lexical_roots)
            why = "links to a place outside" if lexically_in else "is outside"
            raise PermissionDenied(
                f"Refusing the path '{shown}': it {why} the folders tools may read "
                f"({', '.join(self.roots)}).",
                next_step=self.roots_hint(),
            )
        if not os.path.exists(real):
            raise NotFound(f"No file or directory at '{shown}'.", next_step="Check the path.")
        return Path(real)

    def check_member(self, root: Path, name: str) -> Path:
        """A file inside a dataset folder (``#FILE``, ``dataset_id/FILE``): it must stay inside
        the folder once symlinks are resolved, and pass every rule itself."""
        base = os.path.realpath(root)
        shown = f"{root}/{name}"
        path = self.check(os.path.join(base, name), shown=shown)
        if not _within(_fold(str(path)), _fold(base)):
            raise PermissionDenied(
                f"Refusing '{shown}': it links to a place outside its dataset.",
                next_step="Use the dataset's own files, as download_dataset lists them.",
            )
        return path

    def check_tree(self, directory: Path, shown: str) -> None:
        """A folder shown whole (a sandbox mount) may hold nothing that is never read."""
        label = self.holds(str(directory)) or self._denied_name_inside(directory, shown)
        if label:
            raise self._refuse(shown, label)

    def _denied_name_inside(self, directory: Path, shown: str) -> str | None:
        entries = 0
        for dirpath, dirnames, filenames in os.walk(directory):  # links are not followed
            entries += len(dirnames) + len(filenames)
            if entries > MAX_TREE_ENTRIES:
                raise PermissionDenied(
                    f"Refusing the folder '{shown}': it holds more than {MAX_TREE_ENTRIES:,} "
                    "entries, too many to check for credentials.",
                    next_step="Pass the files you need, or a smaller folder.",
                )
            for name in [*dirnames, *filenames]:
                if _NAMES[CASE_INSENSITIVE].fullmatch(name):
                    return f"'{os.path.join(dirpath, name)}', a name that holds credentials"
        return None

    def visible(self, root: Path, names: list[str]) -> list[str]:
        """The names (posix paths relative to ``root``, a checked folder) that tools may read.

        ``root`` passed the guard, so only what lies below it can be denied: the deny entries
        whose literal part is inside it (or, for globs, around it), the state directory when
        it is inside, and credential names in the relative part.
        """
        base = os.path.realpath(root)
        inside = _fold(base).rstrip(os.sep) + os.sep
        relevant = [
            e for e in self.entries
            if e.prefix.startswith(inside) or (e.prefix != e.pattern and inside.startswith(e.prefix))
        ]  # fmt: skip
        state_inside = any(s.startswith(inside) or _within(inside, s) for s in self.state)
        names_re = _NAMES[CASE_INSENSITIVE]
        kept = []
        for name in names:
            if any(names_re.fullmatch(part) for part in name.split("/")):
                continue
            if (relevant or state_inside) and self.denied(os.path.join(base, name), relevant):
                continue
            kept.append(name)
        return kept


def check_path(text: str, settings: Settings) -> Path:
    """The resolved path of a local path a tool argument names (see the module docstring)."""
    return PathPolicy(settings).check(text)


def check_member(root: Path, name: str, settings: Settings) -> Path:
    return PathPolicy(settings).check_member(root, name)


# -- URLs ----------------------------------------------------------------------------------
DEFAULT_PORTS = {"http": 80, "https": 443}
NAT64 = ipaddress.ip_network("64:ff9b::/96")
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def check_scheme(url: str, settings: Settings) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; plain http only when loopback http is allowed.
    Lexical: the addresses are checked where the connection is made (``allowed_addresses``)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput(f"'{url[:200]}' is not a valid URL.", next_step="Check it.") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host:
        raise PermissionDenied(
            f"Refusing to download from '{scheme}://{host}': only https:// URLs are allowed.",
            next_step="Use the https:// address of the file.",
        )
    if scheme == "http" and not settings.allow_loopback_http:
        raise PermissionDenied(
            f"Refusing to download from 'http://{host}': only https:// URLs are allowed (plain "
            "http:// only to this machine, when MLTRAINER_ALLOW_LOOPBACK_HTTP=1 is set).",
            next_step="Use the https:// address of the file.",
        )
    return scheme, host, port or DEFAULT_PORTS[scheme]


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (an address literal is its own answer)."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise RemoteServiceError(
            f"Cannot resolve the host '{host}' ({exc}).",
            next_step="Check the URL and the network connection.",
        ) from None
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in found))


def address_kind(address: Address) -> str | None:
    """What makes an address non-public ('loopback', 'private', ...), or None when public."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address in NAT64:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        elif address.sixtofour is not None:
            address = address.sixtofour
    if address in METADATA:
        return "link-local (cloud metadata)"
    for kind in ("loopback", "link_local", "unspecified", "multicast", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if address.is_global else "non-public"


def allowed_addresses(host: str, port: int, scheme: str, settings: Settings) -> list[str]:
    """Resolve ``host`` once and return its addresses if every one is allowed for ``scheme``;
    connect to these, not to the name, so the answer checked is the answer used."""
    addresses = resolve(host, port)
    for text in addresses:
        kind = address_kind(ipaddress.ip_address(text))
        if scheme == "http" and kind != "loopback":
            raise PermissionDenied(
                f"Refusing to download from 'http://{host}': it resolves to {text}, not to "
                "this machine; plain http:// is allowed to loopback only.",
                next_step="Use the https:// address of the file.",
            )
        if scheme == "http" and not settings.allow_loopback_http:
            raise PermissionDenied(
                f"Refusing 'http://{host}': plain http:// to this machine is off.",
                next_step="Use an https:// URL (MLTRAINER_ALLOW_LOOPBACK_HTTP=1 enables it).",
            )
        if scheme == "https" and kind is not None and not settings.allow_private_urls:
            raise PermissionDenied(
                f"Refusing to download from 'https://{host}': it resolves to {text}, a {kind} "
                "address; the server does not fetch from this machine's or its network's "
                "services.",
                next_step="Use a public https:// URL (a person who needs a server on their own "
                "network can set MLTRAINER_ALLOW_PRIVATE_URLS=1).",
            )
    return addresses
