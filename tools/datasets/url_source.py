"""Plain file downloads over https (http only to loopback), streamed and size-capped."""

from __future__ import annotations

from pathlib import Path

from mltrainer.state.errors import MLTrainerError, NotFound, PermissionDenied, RemoteServiceError
from mltrainer.state.settings import Settings
from mltrainer.tools.datasets import transfer
from mltrainer.tools.datasets.models import ProgressFn
from mltrainer.tools.datasets.refs import DatasetRef, check_url

MAX_REDIRECTS = 5


def download(
    ref: DatasetRef, target: Path, *, settings: Settings, progress: ProgressFn
) -> dict[str, object]:
    import httpx

    assert ref.url is not None

    def check_hop(request: httpx.Request) -> None:
        check_url(str(request.url))  # every redirect hop obeys the same scheme policy

    timeout = httpx.Timeout(30.0, read=300.0)
    try:
        with (
            httpx.Client(
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                timeout=timeout,
                event_hooks={"request": [check_hop]},
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
                response.iter_bytes(1024 * 1024),
                downloaded,
                what=name,
                total=int(length) if length and length.isdigit() else None,
                cap=settings.max_download_bytes,
                progress=progress,
            )
            final_url = str(response.url)
    except MLTrainerError:
        raise
    except httpx.HTTPError as exc:
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
