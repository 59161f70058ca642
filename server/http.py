"""Streamable HTTP transport, with an optional bearer token checked on every request."""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send


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


def build_http_app(host: str, token: str | None) -> ASGIApp:
    from mltrainer.server.app import create_server

    app: ASGIApp = create_server().streamable_http_app(host=host)
    return BearerAuth(app, token) if token else app


def run_http(host: str, port: int, token: str | None) -> None:
    import uvicorn

    uvicorn.run(build_http_app(host, token), host=host, port=port, log_level="warning")
