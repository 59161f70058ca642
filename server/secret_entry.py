"""A one-time local web page where a person types a secret, so the value never passes
through the MCP client or the language model. It is a small HTTP server, part of the
server's surface, started on first use in a daemon thread.

The page listens on 127.0.0.1 only; each request for a secret gets a random token in its
URL, valid once and for a limited time. The token is in the assistant's hands, so the page
trusts nothing else about a request: the ``Host`` must be the page's own address (a
re-bound domain is refused), a POST must come from the page itself (``Origin`` and
``Sec-Fetch-Site`` same-origin when a browser sends them) and a refused POST leaves the link
usable for the person. The page cannot be framed (``frame-ancestors 'none'``,
``X-Frame-Options: DENY``), and a value that cannot be stored is shown back to the person
with the reason, the link still valid.
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qs

from mltrainer.state.destinations import normalize_host
from mltrainer.state.errors import SecretError
from mltrainer.state.masking import Masker
from mltrainer.state.secrets import PREFIX, SecretVault, StoredSecret

TOKEN_TTL_S = 600
MAX_BODY = 64 * 1024
HEADERS = {
    "Cache-Control": "no-store",
    # same-origin, not no-referrer: under no-referrer browsers send `Origin: null` with the
    # form's own POST, and the page could not tell itself from a foreign page.
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}

FORM = """<!doctype html><html><head><meta charset="utf-8"><title>mltrainer: set {name}</title>
<style>body{{font-family:sans-serif;max-width:36em;margin:3em auto}}input{{width:100%;padding:.5em}}
.error{{color:#a00}}</style></head><body><h2>Set the secret <code>{name}</code></h2>
<p>The value is stored on this machine in mltrainer's secrets file (mode 0600). It is never
shown to the assistant; tools refer to it as <code>{reference}</code>.</p>{error}
<form method="post"><p><input type="password" name="value" autofocus autocomplete="off" required
aria-label="value"></p>{hosts}<p><button type="submit">Save</button></p></form></body></html>"""
FIXED_HOSTS = "<p>It may be sent to <b>{hosts}</b> only.</p>"
EDIT_HOSTS = """<p><label>It may be sent to these hosts only (comma-separated; leave empty for a URL
value such as a database URL, which may go only to the host inside it):
<input type="text" name="hosts" value="{hosts}" autocomplete="off"></label></p>"""
DONE = "<!doctype html><html><body><h2>{message}</h2><p>You can close this tab.</p></body></html>"
GONE = (
    "<!doctype html><html><body><h2>This link has expired or was already used.</h2></body></html>"
)
REFUSED = "<!doctype html><html><body><h2>Refused: {why}</h2></body></html>"


@dataclass
class Pending:
    name: str
    hosts: list[str]
    fixed: bool  # hosts set by the service or configuration: shown, not editable
    expires: float
    done: threading.Event = field(default_factory=threading.Event)
    stored: StoredSecret | None = None


class Verdict(Protocol):
    """What a live check of a typed value found (tools/deploy/credentials.CredentialCheck)."""

    @property
    def status(self) -> str: ...

    @property
    def message(self) -> str: ...


# (name, value) -> the verdict of a live check, or None for a kind of secret that has none.
ValueCheck = Callable[[str, str], Verdict | None]


class SecretEntryServer:
    """Serves the one-time pages; started on first use, in a daemon thread."""

    def __init__(self, vault: SecretVault, masker: Masker, check: ValueCheck | None = None) -> None:
        self.vault = vault
        self.masker = masker
        self.check = check  # a live check of a value of a known kind, before it is stored
        self._pending: dict[str, Pending] = {}
        self._completed: dict[str, Pending] = {}  # used links, kept to report the outcome
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    def request(self, name: str, hosts: list[str] | None = None) -> tuple[str, str]:
        """A fresh one-time URL for entering ``name`` (the page suggests ``hosts``)."""
        declared = self.vault.binding(name)
        suggested = [normalize_host(host) for host in hosts or []]
        if declared.fixed and suggested and suggested != declared.hosts:
            raise SecretError(
                f"{name} may be sent to {', '.join(declared.hosts)} only; its hosts cannot be "
                "changed here.",
                next_step="Call set_secret without hosts.",
            )
        token = secrets.token_urlsafe(24)
        now = time.monotonic()
        pending = Pending(
            name=name,
            hosts=declared.hosts if declared.fixed else suggested or declared.hosts,
            fixed=declared.fixed,
            expires=now + TOKEN_TTL_S,
        )
        with self._lock:
            for table in (self._pending, self._completed):
                for old in [t for t, p in table.items() if p.expires < now]:
                    del table[old]
            self._pending[token] = pending
        return f"http://127.0.0.1:{self._start()}/secret/{token}", token

    def pending(self, token: str) -> Pending | None:
        """The request behind a token, while it is not expired (used or not)."""
        with self._lock:
            found = self._pending.get(token) or self._completed.get(token)
        return found if found is not None and found.expires >= time.monotonic() else None

    def _open(self, token: str) -> Pending | None:
        with self._lock:
            pending = self._pending.get(token)
        return pending if pending is not None and pending.expires >= time.monotonic() else None

    def _claim(self, token: str) -> Pending | None:
        """Take an unused link for one POST; no other POST can use it meanwhile."""
        with self._lock:
            pending = self._pending.pop(token, None)
        return pending if pending is not None and pending.expires >= time.monotonic() else None

    def _release(self, token: str, pending: Pending) -> None:
        with self._lock:
            self._pending[token] = pending

    def _complete(self, token: str, pending: Pending, stored: StoredSecret) -> None:
        pending.stored = stored
        with self._lock:
            self._completed[token] = pending
        pending.done.set()

    def _start(self) -> int:
        with self._start_lock:  # two first requests at once must not start two servers
            if self._httpd is None:
                httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
                threading.Thread(target=httpd.serve_forever, daemon=True).start()
                self._httpd = httpd
            return int(self._httpd.server_address[1])

    @property
    def origin(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def close(self) -> None:
        with self._start_lock:
            if self._httpd is not None:
                self._httpd.shutdown()
                self._httpd.server_close()
                self._httpd = None

    def store(self, token: str, value: str, hosts: list[str]) -> tuple[int, str]:
        """Store a posted value: the status and page to answer with."""
        pending = self._claim(token)
        if pending is None:
            return 404, GONE
        verdict = self.check(pending.name, value) if self.check and value else None
        if verdict is not None and verdict.status == "invalid":
            self._release(token, pending)  # the person may type it again on the same page
            return 400, form_page(pending, error=verdict.message, hosts=hosts)
        try:
            stored = self.vault.set(pending.name, value, None if pending.fixed else hosts)
        except SecretError as exc:
            self._release(token, pending)
            return 400, form_page(pending, error=str(exc), hosts=hosts)
        self.masker.add(pending.name, value)
        self._complete(token, pending, stored)
        checked = f" {verdict.message}" if verdict is not None else ""
        return 200, DONE.format(message=html.escape(stored.message + checked))


def form_page(pending: Pending, *, error: str | None = None, hosts: list[str] | None = None) -> str:
    shown = ", ".join(pending.hosts if pending.fixed or hosts is None else hosts)
    hosts_html = (
        FIXED_HOSTS.format(hosts=html.escape(shown))
        if pending.fixed
        else EDIT_HOSTS.format(hosts=html.escape(shown, quote=True))
    )
    return FORM.format(
        name=html.escape(pending.name),
        reference=html.escape(PREFIX + pending.name),
        error=f'<p class="error">{html.escape(error)}</p>' if error else "",
        hosts=hosts_html,
    )


def _handler(entry: SecretEntryServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # no logging of URLs
            return

        def _token(self) -> str | None:
            parts = self.path.split("?")[0].strip("/").split("/")
            return parts[1] if len(parts) == 2 and parts[0] == "secret" else None

        def _reply(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _foreign(self, *, post: bool) -> str | None:
            """Why this request is not the person's own (None when it is)."""
            own = entry.origin
            if self.headers.get("Host") != own.removeprefix("http://"):
                return "this page answers on its own address only"
            if not post:
                return None
            origin = self.headers.get("Origin")
            if origin is not None and origin != own:
                return "the form was sent from another site"
            fetch_site = self.headers.get("Sec-Fetch-Site")
            if fetch_site is not None and fetch_site != "same-origin":
                return "the form was sent from another site"
            return None

        def do_GET(self) -> None:
            if why := self._foreign(post=False):
                return self._reply(421, REFUSED.format(why=why))
            token = self._token()
            pending = entry._open(token) if token else None
            if pending is None:
                return self._reply(404, GONE)
            self._reply(200, form_page(pending))

        def do_POST(self) -> None:
            if why := self._foreign(post=True):  # checked before the link is touched
                return self._reply(403, REFUSED.format(why=why))
            token = self._token()
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not token or length <= 0 or length > MAX_BODY:
                return self._reply(400, GONE)
            form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
            value = (form.get("value") or [""])[0]
            hosts = (form.get("hosts") or [""])[0].replace(",", " ").split()
            self._reply(*entry.store(token, value, hosts))

    return Handler
