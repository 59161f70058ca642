"""The Hugging Face Hub client, in one place: its endpoint and its timeouts.

Dataset downloads (tools/datasets/hf_source.py) and deployment (tools/deploy/hub.py) both talk
to the Hub through ``api()``. The endpoint is the one ``secret://HF_TOKEN`` is bound to
(``Settings.hf_endpoint``, then ``HF_ENDPOINT``, then huggingface.co), so a token only ever
goes where it may. huggingface_hub's shared HTTP client waits forever by default; a stalled
Hub must not hang a tool, so every client it makes has connect and read timeouts (installed
once per process, the client factory being process-wide).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from mltrainer.state.secrets import hub_url
from mltrainer.state.settings import Settings

if TYPE_CHECKING:
    from huggingface_hub import HfApi

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0  # per read: a large download streams, and each chunk must arrive in time
_installed = threading.Lock()
_timeouts_set = False


def endpoint(settings: Settings) -> str:
    return hub_url(settings, os.environ)


def api(settings: Settings, token: str | None) -> HfApi:
    """An ``HfApi`` for the configured endpoint; ``token=None`` is anonymous (never the token
    huggingface_hub would find on its own in ~/.cache)."""
    from huggingface_hub import HfApi

    with_timeouts()
    return HfApi(endpoint=endpoint(settings), token=token or False, library_name="mltrainer")


def with_timeouts() -> None:
    global _timeouts_set
    with _installed:
        if _timeouts_set:
            return
        import httpx2  # huggingface_hub's own copy of httpx
        from huggingface_hub import set_client_factory
        from huggingface_hub.utils import _http  # its default client: hooks that type errors

        def factory() -> httpx2.Client:
            client = _http.default_client_factory()
            client.timeout = httpx2.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
            return client

        set_client_factory(factory)
        _timeouts_set = True
