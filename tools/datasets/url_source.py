"""Plain file downloads: https (http only to loopback, when allowed), streamed and size-capped,
with every connection pinned to an address the guard checked (``pinned``)."""

from __future__ import annotations

from pathlib import Path

from mltrainer.state.errors import MLTrainerError, NotFound, PermissionDenied, RemoteServiceError
from mltrainer.state.settings import Settings
from mltrainer.tools.datasets import transfer
from mltrainer.tools.datasets.limits import Deadline
from mltrainer.tools.datasets.models import ProgressFn
from mltrainer.tools.datasets.pinned import pinned_client
from mltrainer.tools.datasets.refs import DatasetRef

MAX_REDIRECTS = 5


def download(
    ref: DatasetRef, target: Path, *, settings: Settings, progress: ProgressFn, deadline: Deadline
) -> dict[str, object]:
    import httpx

    assert ref.url is not None
    try:
        with (
            pinned_client(
                settings,
                deadline,
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                headers={"User-Agent": "mltrainer-mcp"},
            ) as client,
            client.stream("GET", ref.url) as response,
        ):
            _raise_for_status(response, ref.url)
            name = transfer.filename_from(
                response.headers.get("content-disposition"), str(response.url)
            )
            length = response.headers.get("content-length")
            downloaded = target / ".download" / name
            transfer.write_stream(
                response.iter_bytes(),  # as the bytes arrive: the deadline is checked per read
                downloaded,
                what=name,
                total=int(length) if length and length.isdigit() else None,
                cap=settings.max_download_bytes,
                progress=progress,
            )
            deadline.check()  # a body cut short at the deadline can look like a complete one
            final_url = str(response.url)
    except MLTrainerError:
        raise
    except httpx.HTTPError as exc:
        if deadline.passed():
            raise deadline.error() from None
        raise RemoteServiceError(
            f"Could not download {ref.url} ({type(exc).__name__}: {str(exc)[:200]}).",
            next_step="Check the URL and the network connection, then try again.",
        ) from None
    transfer.place(downloaded, target, settings)
    return {"title": name, "url": final_url}


def _raise_for_status(response: object, url: str) -> None:
    import httpx

    assert isinstance(response, httpx.Response)
    status = response.status_code
    if status < 400:
        return
    request_id = response.headers.get("x-request-id")
    if status == 404:
        raise NotFound(f"Nothing at {url} (HTTP 404).", next_step="Check the URL.")
    if status in (401, 403):
        raise PermissionDenied(
            f"The server refused {url} (HTTP {status}).",
            next_step="Use a public URL; authenticated URL downloads are not supported.",
        )
    raise RemoteServiceError(
        f"Downloading {url} failed",
        status=status,
        request_id=request_id,
        next_step="Try again later." if status >= 500 or status == 429 else "Check the URL.",
    )
