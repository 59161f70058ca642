"""One masker for every output: tool results, events, SQLite rows, text artifacts.

A secret is matched as its raw value, reversed, and as the forms it takes when code prints
it encoded: base64 and base64url at each of the three byte offsets it can sit at inside a
longer encoded string, URL-encoding, JSON escaping, and hex. ``StreamMasker`` also masks a
secret split across chunks of a stream by holding back the tail of each chunk.

A value is masked only when masking it is safe: one too short or too common (``false``,
``4096``, ``password``) would blank every ordinary occurrence of that word and break the
JSON around it, so ``masking_problem`` names why such a value cannot be a secret, and the
vault refuses to store it.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MIN_SECRET_LEN = 8
MIN_ENCODED_LEN = 6
MIN_DISTINCT_CHARS = 4
# Values that occur in ordinary output, so a secret equal to one could never be told apart
# from data (shorter ones, such as `true`, `false`, `null` or `4096`, fail on length).
COMMON_VALUES = frozenset(
    {
        "undefined",
        "password",
        "passw0rd",
        "password1",
        "changeme",
        "letmein1",
        "secret123",
        "localhost",
        "username",
        "anonymous",
        "disabled",
        "development",
        "production",
        "qwertyui",
        "qwertyuiop",
        "abcdefgh",
        "abcd1234",
        "administrator",
    }
)
NUMBER_RE = re.compile(r"[-+]?[0-9][0-9_.,]*([eE][-+]?[0-9]+)?")


def masking_problem(value: str) -> str | None:
    """Why ``value`` cannot be masked safely, or None when it can."""
    if len(value) < MIN_SECRET_LEN:
        return f"it is shorter than {MIN_SECRET_LEN} characters"
    if value.strip().lower() in COMMON_VALUES:
        return "it is a common word that appears in ordinary output"
    if NUMBER_RE.fullmatch(value.strip()):
        return "it is a number, which appears in ordinary data"
    if len(set(value)) < MIN_DISTINCT_CHARS:
        return f"it has fewer than {MIN_DISTINCT_CHARS} distinct characters"
    return None


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
    forms = {value, value[::-1], quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    forms.add(json.dumps(value, ensure_ascii=True)[1:-1])
    forms |= {raw.hex(), raw.hex().upper()}
    forms |= _base64_cores(raw, urlsafe=False) | _base64_cores(raw, urlsafe=True)
    return {form for form in forms if len(form) >= MIN_ENCODED_LEN}


class Masker:
    """Replaces every known secret, in any of its encoded forms, by ``***NAME***``."""

    def __init__(self, secrets: dict[str, str] | None = None) -> None:
        self._forms: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None
        self.longest = 0
        for name, value in (secrets or {}).items():
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Mask ``value`` from now on; a value that cannot be masked safely is skipped."""
        if masking_problem(value) is not None:
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
        """Mask every string inside nested dicts, lists and tuples, dictionary keys included.

        Two keys that mask to the same text are kept apart by a ``#2``, ``#3`` suffix rather
        than one silently replacing the other.
        """
        if isinstance(obj, str):
            return self.mask(obj)
        if isinstance(obj, dict):
            masked: dict[object, object] = {}
            for key, value in obj.items():
                new_key = self.mask(key) if isinstance(key, str) else key
                if new_key in masked:
                    n = 2
                    while f"{new_key}#{n}" in masked:
                        n += 1
                    new_key = f"{new_key}#{n}"
                masked[new_key] = self.mask_obj(value)
            return masked
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
