"""A one-time local web page where a person types a secret, so the value never passes
through the MCP client or the language model.

The page listens on 127.0.0.1 only; each request for a secret gets a random token in its
URL, valid once and for a limited time.
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from mltrainer.state.masking import Masker
from mltrainer.state.secrets import PREFIX, SecretVault, parse_reference

TOKEN_TTL_S = 600
MAX_BODY = 64 * 1024

FORM = """<!doctype html><html><head><meta charset="utf-8"><title>mltrainer: set {name}</title>
<style>body{{font-family:sans-serif;max-width:36em;margin:3em auto}}input{{width:100%;padding:.5em}}</style>
</head><body><h2>Set the secret <code>{name}</code></h2>
<p>The value is stored on this machine in mltrainer's secrets file (mode 0600). It is never
shown to the assistant; tools refer to it as <code>{reference}</code>.</p>
<form method="post"><input type="password" name="value" autofocus autocomplete="off" required>
<p><button type="submit">Save</button></p></form></body></html>"""
DONE = (
    "<!doctype html><html><body><h2>Saved {name}.</h2><p>You can close this tab.</p></body></html>"
)
GONE = (
    "<!doctype html><html><body><h2>This link has expired or was already used.</h2></body></html>"
)


@dataclass
class Pending:
    name: str
    expires: float
    done: threading.Event = field(default_factory=threading.Event)


class SecretEntryServer:
    """Serves the one-time pages; started on first use, in a daemon thread."""

    def __init__(self, vault: SecretVault, masker: Masker) -> None:
        self.vault = vault
        self.masker = masker
        self._pending: dict[str, Pending] = {}
        self._completed: dict[str, Pending] = {}  # used links, kept to report the outcome
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    def request(self, name: str) -> tuple[str, str]:
        """A fresh one-time URL for entering ``name``, and its token."""
        parse_reference(PREFIX + name)
        token = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            for table in (self._pending, self._completed):
                for old in [t for t, p in table.items() if p.expires < now]:
                    del table[old]
            self._pending[token] = Pending(name=name, expires=time.monotonic() + TOKEN_TTL_S)
        port = self._start()
        return f"http://127.0.0.1:{port}/secret/{token}", token

    def pending(self, token: str) -> Pending | None:
        """The request behind a token, while it is neither used nor expired."""
        with self._lock:
            found = self._pending.get(token) or self._completed.get(token)
        return found if found is not None and found.expires >= time.monotonic() else None

    def _take(self, token: str, *, consume: bool) -> Pending | None:
        with self._lock:
            pending = self._pending.get(token)
            if pending is None or pending.expires < time.monotonic():
                self._pending.pop(token, None)
                return None
            if consume:
                self._completed[token] = self._pending.pop(token)
            return pending

    def _start(self) -> int:
        if self._httpd is None:
            self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
            threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return int(self._httpd.server_address[1])

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        entry = self

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
                self.send_header("Cache-Control", "no-store")
                self.send_header("Referrer-Policy", "no-referrer")
                self.send_header(
                    "Content-Security-Policy",
                    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
                )
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                token = self._token()
                pending = entry._take(token, consume=False) if token else None
                if pending is None:
                    return self._reply(404, GONE)
                name = html.escape(pending.name)
                self._reply(
                    200, FORM.format(name=name, reference=html.escape(PREFIX + pending.name))
                )

            def do_POST(self) -> None:
                token = self._token()
                length = int(self.headers.get("Content-Length") or 0)
                if not token or length <= 0 or length > MAX_BODY:
                    return self._reply(400, GONE)
                body = self.rfile.read(length).decode("utf-8", "replace")
                value = (parse_qs(body).get("value") or [""])[0]
                pending = entry._take(token, consume=bool(value))
                if pending is None or not value:
                    return self._reply(404 if pending is None else 400, GONE)
                entry.vault.set(pending.name, value)
                entry.masker.add(pending.name, value)
                pending.done.set()
                self._reply(200, DONE.format(name=html.escape(pending.name)))

        return Handler
