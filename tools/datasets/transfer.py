"""Writing downloaded bytes to disk: size-capped, with progress, and archives unpacked safely."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mltrainer.state.errors import DatasetError
from mltrainer.state.settings import Settings
from mltrainer.tools.datasets import extract
from mltrainer.tools.datasets.models import ProgressFn

SAFE_NAME_RE = re.compile(r"[^A-Za-z0-9._+-]+")


class Throttled:
    """Passes progress on at most every ``interval`` seconds, never going backwards (MCP
    progress must increase), and always the last update of a known total."""

    def __init__(self, progress: ProgressFn, interval: float = 0.25) -> None:
        self.progress, self.interval, self.last = progress, interval, 0.0
        self.done = 0.0

    def __call__(self, done: float, total: float | None, message: str) -> None:
        if done < self.done:
            return
        now = time.monotonic()
        if now - self.last >= self.interval or (total is not None and done >= total):
            self.last, self.done = now, done
            self.progress(done, total, message)

    def finish(self, total: float) -> None:
        final = max(total, self.done, 1.0)
        self.progress(final, final, "done")


def too_big(what: str, size: int | None, cap: int) -> DatasetError:
    shown = f" ({size:,} bytes)" if size else ""
    return DatasetError(
        f"Refusing to download {what}{shown}: it is larger than the limit of {cap:,} bytes.",
        next_step="Pick single files with the files argument, or raise "
        "MLTRAINER_MAX_DOWNLOAD_BYTES if you really need all of it.",
    )


def write_stream(
    chunks: Iterable[bytes],
    dest: Path,
    *,
    what: str,
    total: int | None,
    cap: int,
    progress: ProgressFn,
    done_before: int = 0,
    grand_total: int | None = None,
) -> int:
    """Stream ``chunks`` into ``dest``; stops as soon as more than ``cap`` bytes arrive."""
    if total is not None and total > cap:
        raise too_big(what, total, cap)
    written = 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    overall = grand_total if grand_total is not None else total
    with dest.open("wb") as out:
        for chunk in chunks:
            written += len(chunk)
            if written > cap:
                out.close()
                dest.unlink(missing_ok=True)
                raise too_big(what, None, cap)
            out.write(chunk)
            progress(done_before + written, overall, f"downloading {what}")
    return written


def filename_from(content_disposition: str | None, url: str, fallback: str = "download") -> str:
    """A safe file name from a Content-Disposition header, else from the URL's last segment."""
    name = None
    if content_disposition:
        star = re.search(r"filename\*\s*=\s*[^']*'[^']*'([^;]+)", content_disposition, re.I)
        plain = re.search(
            r'filename\s*=\s*"([^"]+)"|filename\s*=\s*([^;]+)', content_disposition, re.I
        )
        if star:
            name = unquote(star.group(1).strip())
        elif plain:
            name = (plain.group(1) or plain.group(2) or "").strip()
    if not name:
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = SAFE_NAME_RE.sub("_", name).lstrip(".")
    return name[:200] or fallback


def place(downloaded: Path, target: Path, settings: Settings) -> None:
    """Put a downloaded file into ``target``: a zip/tar is extracted safely, anything else moved."""
    if extract.is_archive(downloaded):
        extract.extract(
            downloaded,
            target,
            max_bytes=settings.max_extract_bytes,
            max_entries=settings.max_extract_entries,
        )
        downloaded.unlink(missing_ok=True)
        return
    dest = target / downloaded.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    downloaded.replace(dest)
