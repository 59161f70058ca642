"""What a card may say about the training data's origin, from the reference it came by.

A Hub dataset becomes the card's ``datasets`` entry (so the Hub links model and data), a Kaggle
dataset its kaggle.com address; a local file is named by its file name only, so that no path
of the person's machine is published.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from urllib.parse import urlsplit

from pydantic import BaseModel

KAGGLE_WEB = "https://www.kaggle.com"
_SLUG = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_HF = re.compile(rf"^hf:(?P<id>{_SLUG}/{_SLUG})")
_KAGGLE = re.compile(rf"^kaggle:(?P<id>{_SLUG}/{_SLUG})")
_COMPETITION = re.compile(rf"^kaggle-competition:(?P<id>{_SLUG})")


class DataOrigin(BaseModel):
    display: str  # what the card shows
    hub_dataset: str | None = None  # for the card's `datasets` metadata
    kind: str  # hf, kaggle, kaggle-competition, url or local


def data_origin(reference: str | None) -> DataOrigin:
    text = (reference or "").strip()
    if match := _HF.match(text):
        return DataOrigin(display=text, hub_dataset=match["id"], kind="hf")
    if match := _KAGGLE.match(text):
        url = f"{KAGGLE_WEB}/datasets/{match['id']}"
        return DataOrigin(display=f"{text} ({url})", hub_dataset=url, kind="kaggle")
    if match := _COMPETITION.match(text):
        url = f"{KAGGLE_WEB}/competitions/{match['id']}"
        return DataOrigin(display=f"{text} ({url})", hub_dataset=url, kind="kaggle-competition")
    if text.startswith(("https://", "http://")):
        parts = urlsplit(text)  # without query or fragment: they may carry access keys
        return DataOrigin(display=f"{parts.scheme}://{parts.netloc}{parts.path}", kind="url")
    name = PurePath(text.replace("\\", "/")).name if text else ""
    return DataOrigin(display=f"a local file, {name}" if name else "a local file", kind="local")


def public_name(path: str | None) -> str | None:
    """A local path reduced to its file name; anything else (a reference) as it is."""
    if path is None:
        return None
    if path.startswith(("hf:", "kaggle:", "kaggle-competition:", "https://", "http://")):
        return data_origin(path).display.split(" (")[0]
    return PurePath(path.replace("\\", "/")).name
