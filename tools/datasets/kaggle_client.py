"""The official Kaggle client (``kaggle`` + ``kagglesdk``), built quietly with explicit
credentials and endpoint: shared by dataset search and download (kaggle_source), the
credential check (deploy) and the Kaggle kernels runtime (runtimes/kaggle).

Importing ``kaggle`` authenticates at import time, may print to stdout and reads the user's
``~/.kaggle``: we import it once, lazily, with stdout sent to stderr and the Kaggle variables
hidden. Credentials come only from the secret reference given to each call and are passed to
the client explicitly. ``settings.kaggle_api_endpoint`` (e.g. a local fake in tests) replaces
https://api.kaggle.com; kagglesdk itself only knows a fixed set of hosts.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

from mltrainer.state.settings import Settings

_import_lock = threading.Lock()
_HIDDEN_AT_IMPORT = ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_V1_TOKEN")
REQUEST_TIMEOUT = (30.0, 300.0)  # connect, read (seconds)

_quiet_lock = threading.Lock()
_quiet_depth = 0
_saved_stdout: Any = None


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """The kaggle package prints; on a stdio MCP server stdout is the protocol channel.

    ``sys.stdout`` is process-wide, so concurrent calls share one swap: the first one in
    redirects to stderr and the last one out restores it.
    """
    global _quiet_depth, _saved_stdout
    with _quiet_lock:
        if _quiet_depth == 0:
            _saved_stdout, sys.stdout = sys.stdout, sys.stderr
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                sys.stdout = _saved_stdout


@functools.cache
def _api_class(config_dir: str) -> type:
    # The import authenticates and prints a help text when no credentials are found: noise.
    with (
        _import_lock,
        quiet_stdout(),  # holds the shared swap, so the nested redirect is restored safely
        open(os.devnull, "w") as sink,
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
    ):
        saved = {name: os.environ.pop(name) for name in _HIDDEN_AT_IMPORT if name in os.environ}
        old_dir = os.environ.get("KAGGLE_CONFIG_DIR")
        os.environ["KAGGLE_CONFIG_DIR"] = config_dir
        try:
            from kaggle.api.kaggle_api_extended import KaggleApi
            from kagglesdk import KaggleClient, KaggleEnv
        finally:
            os.environ.update(saved)
            if old_dir is None:
                os.environ.pop("KAGGLE_CONFIG_DIR", None)
            else:
                os.environ["KAGGLE_CONFIG_DIR"] = old_dir

    class Api(KaggleApi):  # type: ignore[misc, valid-type]
        """KaggleApi with explicit credentials and endpoint instead of files and globals."""

        def __init__(
            self,
            credentials: dict[str, str],
            endpoint: str | None,
            timeout: tuple[float, float],
        ) -> None:
            self._credentials = credentials
            self._endpoint = endpoint.rstrip("/") if endpoint else None
            self._timeout = timeout
            self.config_values: dict[str, str] = {}

        def build_kaggle_client(self) -> Any:
            client = KaggleClient(
                env=KaggleEnv.PROD,
                username=self._credentials.get("KAGGLE_USERNAME"),
                password=self._credentials.get("KAGGLE_KEY"),
                api_token=self._credentials.get("KAGGLE_API_TOKEN"),
                user_agent="mltrainer-mcp",
            )
            http = client._http_client
            if self._endpoint:
                # kagglesdk has no public endpoint override; this is the one place we set it.
                http._endpoint = self._endpoint
            # kagglesdk sends without a timeout; a stalled connection must not hang a tool.
            http._init_session()
            for prefix in ("https://", "http://"):
                http._session.mount(prefix, _timeout_adapter_class()(self._timeout))
            return client

    return Api


@functools.cache
def _timeout_adapter_class() -> type:
    from requests.adapters import HTTPAdapter

    class TimeoutAdapter(HTTPAdapter):
        def __init__(self, timeout: tuple[float, float]) -> None:
            super().__init__()
            self._timeout = timeout

        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = self._timeout
            return super().send(request, *args, **kwargs)

    return TimeoutAdapter


def make_api(
    settings: Settings,
    credentials: dict[str, str],
    *,
    timeout: tuple[float, float] = REQUEST_TIMEOUT,
) -> Any:
    """A ``KaggleApi`` for ``credentials`` (as the vault resolves secret://KAGGLE) that talks
    to ``settings.kaggle_api_endpoint``; every request ends after ``timeout`` (connect, read)."""
    config_dir = settings.home / "kaggle"
    config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return _api_class(str(config_dir))(credentials, settings.kaggle_api_endpoint, timeout)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a failed client call (``requests`` errors carry the response)."""
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)
