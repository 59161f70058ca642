"""Streamable HTTP transport: a bearer token on every request, and DNS-rebinding protection.

Every HTTP server requires ``Authorization: Bearer <token>``, on loopback too: any local user
can reach a loopback port. The token is ``--token`` / ``MLTRAINER_HTTP_TOKEN`` when given,
else one generated at first start and kept in ``$MLTRAINER_HOME/http_token`` (mode 0600),
printed once to stderr for the person. On a loopback address the SDK's transport security
accepts only this server's own ``Host`` and ``Origin`` (``127.0.0.2:8765`` when bound there),
so a web page whose domain re-resolves to 127.0.0.1 is refused even before the token counts.
"""

from __future__ import annotations

import hmac
import os
import secrets
import sys
from pathlib import Path

from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from mltrainer.state.destinations import is_loopback
from mltrainer.state.errors import PermissionDenied
from mltrainer.state.settings import Settings

MIN_TOKEN_LEN = 16


class BearerAuth:
    """Rejects requests without ``Authorization: Bearer <token>`` (constant-time compare)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                body = b'{"error": "missing or wrong bearer token"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def load_or_create_token(path: Path) -> tuple[str, bool]:
    """The token stored at ``path``, creating it (0600) if there is none; and whether it was
    created now. Two servers starting at once agree on one token (exclusive create)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise PermissionDenied(
                f"The HTTP token file {path} is readable by other users (mode {mode:o}).",
                next_step=f"Delete it to have a new token generated (or 'chmod 600 {path}' if "
                "no one else could have read it).",
            ) from None
        stored = path.read_text().strip()
        if len(stored) < MIN_TOKEN_LEN:
            raise PermissionDenied(
                f"The HTTP token file {path} holds no usable token.",
                next_step="Delete it to have a new token generated.",
            ) from None
        return stored, False
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token, True


def resolve_token(settings: Settings, given: str | None) -> str:
    """The bearer token this server requires: ``given`` (--token), the configured one, or
    the stored one (generated and shown once to the person on first start)."""
    configured = settings.http_token.get_secret_value() if settings.http_token else None
    token = given or configured
    if token is not None:
        if len(token) < MIN_TOKEN_LEN:
            raise PermissionDenied(
                f"The HTTP bearer token is shorter than {MIN_TOKEN_LEN} characters.",
                next_step="Use a long random one, or leave --token and MLTRAINER_HTTP_TOKEN unset "
                "to have one generated.",
            )
        return token
    path = settings.http_token_path
    token, created = load_or_create_token(path)
    if created:
        print(
            "mltrainer: HTTP clients must send 'Authorization: Bearer <token>'. Generated a "
            f"token for this server:\n\n    {token}\n\nIt is kept in {path} (readable by you "
            "only): read it from there when you need it again.",
            file=sys.stderr,
        )
    else:
        print(f"mltrainer: HTTP clients need the bearer token in {path}.", file=sys.stderr)
    return token


def transport_security(host: str, port: int) -> TransportSecuritySettings:
    """On loopback, only this server's own Host and Origin; elsewhere the token alone."""
    if not is_loopback(host):
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    own = {f"[{host}]" if ":" in host else host}
    if host in ("127.0.0.1", "::1", "localhost"):
        own |= {"127.0.0.1", "localhost", "[::1]"}
    names = sorted(own)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{name}:{port}" for name in names],
        allowed_origins=[f"http://{name}:{port}" for name in names],
    )


def build_http_app(host: str, port: int, token: str, settings: Settings | None = None) -> ASGIApp:
    from mltrainer.server.app import create_server

    app = create_server(settings).streamable_http_app(
        host=host, transport_security=transport_security(host, port)
    )
    return BearerAuth(app, token)


def run_http(host: str, port: int, token: str) -> None:
    import uvicorn

    uvicorn.run(build_http_app(host, port, token), host=host, port=port, log_level="warning")
