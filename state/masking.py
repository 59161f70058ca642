"""One masker for every output: tool results, events, SQLite rows, text artifacts.

A secret is matched as its raw value and as the forms it takes when code prints it
encoded: base64 and base64url at each of the three byte offsets it can sit at inside a
longer encoded string, URL-encoding, JSON escaping, and hex. ``StreamMasker`` also masks a
secret split across chunks of a stream by holding back the tail of each chunk.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MIN_SECRET_LEN = 4
MIN_ENCODED_LEN = 6


def _base64_cores(value: bytes, *, urlsafe: bool) -> set[str]:
    """The part of base64(prefix + value + suffix) that depends on ``value`` alone."""
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    cores = set()
    for offset in range(3):
        encoded = encode(b"\0" * offset + value).decode().rstrip("=")
        start = (offset * 8 + 5) // 6
        end = ((offset + len(value)) * 8) // 6
        core = encoded[start:end]
        if len(core) >= MIN_ENCODED_LEN:
            cores.add(core)
    return cores


def encoded_forms(value: str) -> set[str]:
    raw = value.encode()
    forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    forms.add(json.dumps(value, ensure_ascii=True)[1:-1])
    forms |= {raw.hex(), raw.hex().upper()}
    forms |= _base64_cores(raw, urlsafe=False) | _base64_cores(raw, urlsafe=True)
    return {form for form in forms if len(form) >= MIN_SECRET_LEN}


class Masker:
    """Replaces every known secret, in any of its encoded forms, by ``***NAME***``."""

    def __init__(self, secrets: dict[str, str] | None = None) -> None:
        self._forms: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None
        self.longest = 0
        for name, value in (secrets or {}).items():
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        if len(value) < MIN_SECRET_LEN:
            return
        for form in encoded_forms(value):
            self._forms.setdefault(form, name)
        ordered = sorted(self._forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(form) for form in ordered))
        self.longest = len(ordered[0])

    def add_many(self, secrets: Iterable[tuple[str, str]]) -> None:
        for name, value in secrets:
            self.add(name, value)

    def mask(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(lambda m: f"***{self._forms[m.group(0)]}***", text)

    def mask_obj(self, obj: object) -> object:
        """Mask every string inside nested dicts, lists and tuples."""
        if isinstance(obj, str):
            return self.mask(obj)
        if isinstance(obj, dict):
            return {key: self.mask_obj(value) for key, value in obj.items()}
        if isinstance(obj, list | tuple):
            return type(obj)(self.mask_obj(item) for item in obj)
        return obj

    def stream(self) -> StreamMasker:
        return StreamMasker(self)


class StreamMasker:
    """Masks a stream given in chunks, even when a secret straddles two chunks.

    The last ``longest - 1`` characters of what has been fed are held back, since they
    may be the beginning of a secret that the next chunk completes.
    """

    def __init__(self, masker: Masker) -> None:
        self._masker = masker
        self._pending = ""

    def feed(self, chunk: str) -> str:
        text = self._pending + chunk
        pattern = self._masker._pattern
        if pattern is None:
            self._pending = ""
            return text
        cut = max(len(text) - (self._masker.longest - 1), 0)
        out: list[str] = []
        pos = 0
        for match in pattern.finditer(text):
            if match.start() >= cut:
                break
            out += [text[pos : match.start()], f"***{self._masker._forms[match.group(0)]}***"]
            pos = match.end()
        cut = max(cut, pos)
        out.append(text[pos:cut])
        self._pending = text[cut:]
        return "".join(out)

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return self._masker.mask(text)
