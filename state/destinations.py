"""Where a credential may be sent: the hosts bound to a secret, and the check of a destination.

A bound host is written ``host`` (any port), ``host:port`` (that port only) or ``*.domain``
(any subdomain of ``domain``); an IPv6 address goes in brackets, ``[::1]:8080``. A destination
is the URL a credential is about to travel to; it must name its host plainly (no user part,
no backslash or white space that parsers read differently) and, over plain ``http``, be a
loopback address, so a credential never crosses a network unencrypted.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from mltrainer.state.errors import SecretError

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
NAME_HOST_RE = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?")
IPV6_HOST_RE = re.compile(r"\[[0-9a-f:.]+\](?::[0-9]{1,5})?")
DEFAULT_PORTS = {"http": 80, "https": 443}
WEB_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True)
class Destination:
    """A parsed destination URL: its scheme, lower-case host and effective port."""

    scheme: str
    host: str
    port: int | None

    @property
    def text(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        explicit = self.port is not None and self.port != DEFAULT_PORTS.get(self.scheme)
        return f"{host}:{self.port}" if explicit else host


def normalize_host(entry: str) -> str:
    """A bound-host entry in canonical form; anything else is refused with the syntax."""
    host = str(entry).strip().lower().rstrip(".")
    if NAME_HOST_RE.fullmatch(host) or IPV6_HOST_RE.fullmatch(host):
        return host
    raise SecretError(
        f"'{str(entry)[:80]}' is not a host a secret can be bound to.",
        next_step="Write a host name such as 'api.example.com', optionally with a port "
        "('db.example.com:5432'), or '*.example.com' for its subdomains.",
    )


def parse_destination(url: str) -> Destination:
    """The destination a credential would travel to; refuses URLs whose host is ambiguous."""
    if not isinstance(url, str) or any(c.isspace() or c == "\\" for c in url):
        raise SecretError(f"'{str(url)[:80]}' is not a destination a credential can go to.")
    parts = urlsplit(url)
    if "@" in parts.netloc or not parts.hostname:
        raise SecretError(
            f"'{url[:80]}' does not name its host plainly, so no credential goes there.",
            next_step="Use a URL of the form scheme://host[:port]/path.",
        )
    try:
        port = parts.port
    except ValueError:
        raise SecretError(f"'{url[:80]}' has an invalid port.") from None
    scheme = parts.scheme.lower()
    return Destination(scheme, parts.hostname.rstrip("."), port or DEFAULT_PORTS.get(scheme))


def host_of_url(value: str) -> str | None:
    """``host[:port]`` of a secret that is itself a URL (a database URL), or None.

    A URL with an empty authority, ``scheme:///path`` (``sqlite:///data.db``,
    ``duckdb:///data.duckdb``), names a file on this machine: its host is ``localhost``.
    """
    if "://" not in value or any(c.isspace() or c == "\\" for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme and value.startswith(f"{parts.scheme}:///") and len(parts.path) > 1:
        return "localhost"
    try:
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    host = parts.hostname.rstrip(".")
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port else host


def password_of_url(value: str) -> str | None:
    """The password inside a URL value (``scheme://user:PASSWORD@host``), if any."""
    if host_of_url(value) is None:
        return None
    # Decoded: a driver sends (and may print) p@ss:word, not the p%40ss%3Aword of the URL; the
    # masker adds the encoded forms itself.
    return unquote(urlsplit(value).password or "") or None


def allows(bound: list[str], destination: Destination) -> bool:
    """Whether ``destination`` is one of the ``bound`` hosts."""
    return any(_matches(entry, destination) for entry in bound)


def _matches(entry: str, dest: Destination) -> bool:
    host, _, port = entry.rpartition(":") if _has_port(entry) else (entry, "", "")
    if port and dest.port != int(port):
        return False
    host = host.strip("[]")
    if host.startswith("*."):
        return dest.host.endswith(host[1:])
    return dest.host == host


def _has_port(entry: str) -> bool:
    if entry.startswith("["):
        return "]:" in entry
    return ":" in entry


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: addresses that never leave this machine."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_destination(reference: str, bound: list[str], destination: str) -> None:
    """Refuse, with the reason, to send the secret ``reference`` anywhere but ``bound``."""
    dest = parse_destination(destination)
    if not allows(bound, dest):
        raise SecretError(
            f"{reference} may be sent to {', '.join(bound)} only; this call would send it to "
            f"{dest.text}.",
            next_step="Pass the secret that belongs to this service, or ask the person to "
            "register the host for it (set_secret, or 'mltrainer secrets set NAME --host HOST').",
        )
    if dest.scheme in WEB_SCHEMES and dest.scheme != "https" and not is_loopback(dest.host):
        raise SecretError(
            f"{reference} would travel unencrypted over http to {dest.text}.",
            next_step="Use the service's https:// address.",
        )
