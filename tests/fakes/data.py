"""Small datasets and helpers shared by the dataset tests."""

from __future__ import annotations

import io
import ssl
import threading
import zipfile
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from fakes.base import FakeServer, Request, Response
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store

IRIS_CSV = b"sepal,petal,species\n5.1,1.4,setosa\n6.2,4.5,versicolor\n7.7,6.7,virginica\n"
TRAIN_CSV = b"id,x,y\n1,0.5,yes\n2,0.1,no\n3,0.9,yes\n"
TEST_CSV = b"id,x\n4,0.3\n5,0.7\n"


def raw_zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buffer.getvalue()


@dataclass
class DataContext:
    """What the dataset functions need: settings, store and vault (no job machinery)."""

    settings: Settings
    store: Store
    vault: SecretVault


class FileServer(FakeServer):
    """Serves ``files`` (URL path → Response); over TLS when given a server SSL context."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__()
        self.files: dict[str, Response] = {}
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def handle(self, request: Request) -> Response:
        return self.files.get(request.path, Response(404, b"nope"))


class TrickleServer:
    """A slow source: every GET gets headers promising ``size`` bytes, then one byte per
    ``interval`` seconds until ``release`` is set (then the rest at once). With
    ``slow_headers``, even the headers never end: one more header byte per ``interval``, for
    ``size`` bytes. ``gone`` is set when a client hangs up before the end."""

    def __init__(self, size: int = 1000, interval: float = 0.2, slow_headers: bool = False) -> None:
        self.release = threading.Event()
        self.gone = threading.Event()
        self.connected = 0
        self._changed = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner._changed:
                    owner.connected += 1
                    owner._changed.notify_all()
                try:
                    self._trickle()
                except OSError:
                    owner.gone.set()  # the client gave up (its deadline)

            def _trickle(self) -> None:
                if slow_headers:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(size))
                    self.send_header("Content-Disposition", 'attachment; filename="slow.csv"')
                    self.end_headers()
                sent = 0
                while sent < size - 1 and not owner.release.wait(interval):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    sent += 1
                self.wfile.write(b"x" * (size - sent))

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def wait_connected(self, count: int, timeout: float = 120) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.connected >= count, timeout)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
