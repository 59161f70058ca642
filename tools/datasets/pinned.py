"""An httpx client whose every connection goes to an address the guard allowed.

The URL a tool names is checked on the addresses its host resolves to (``state.guard``). To
make sure the connection goes to one of exactly those addresses, name resolution happens in
the connection layer: httpcore asks our network backend to connect to (host, port); the
backend resolves once, has the guard check every answer, and connects to a checked address.
TLS still verifies the certificate against the host name, redirects to another host open a
new connection (checked again), and a DNS answer that changes between a check and a connect
(rebinding) cannot slip through because there is no second lookup. Proxies from the
environment are not used: a proxy would resolve the name itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from mltrainer.state import guard
from mltrainer.state.errors import PermissionDenied
from mltrainer.state.settings import Settings
from mltrainer.tools.datasets.limits import Deadline

CONNECT_TIMEOUT_S = 30.0
READ_TIMEOUT_S = 60.0


class _PinnedBackend(httpcore.NetworkBackend):
    def __init__(self, settings: Settings, scheme: str, deadline: Deadline) -> None:
        self.settings, self.scheme, self.deadline = settings, scheme, deadline
        self.inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = guard.allowed_addresses(host, port, self.scheme, self.settings)
        failure: Exception | None = None
        for address in addresses:
            try:
                stream = self.inner.connect_tcp(
                    address,
                    port,
                    timeout=self.deadline.clip(timeout),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            self.deadline.watch(stream.get_extra_info("socket"))
            return stream
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise PermissionDenied("Downloads do not use Unix sockets.")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class _PinnedTransport(httpx.HTTPTransport):
    def __init__(self, settings: Settings, scheme: str, deadline: Deadline) -> None:
        super().__init__(trust_env=False)
        # httpx has no parameter for the network backend: replace the pool it built by one
        # that connects through ours (tests/test_guard.py proves the pinning is in effect).
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=_PinnedBackend(settings, scheme, deadline),
        )


def pinned_client(settings: Settings, deadline: Deadline, **kwargs: Any) -> httpx.Client:
    """A client for one download: every hop's scheme checked, every connection pinned."""

    def check_hop(request: httpx.Request) -> None:
        guard.check_scheme(str(request.url), settings)

    timeout = httpx.Timeout(deadline.clip(CONNECT_TIMEOUT_S), read=deadline.clip(READ_TIMEOUT_S))
    return httpx.Client(
        transport=_PinnedTransport(settings, "https", deadline),
        mounts={"http://": _PinnedTransport(settings, "http", deadline)},
        trust_env=False,
        timeout=timeout,
        event_hooks={"request": [check_hop]},
        **kwargs,
    )
