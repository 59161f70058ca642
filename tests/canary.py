"""A canary secret, and a scanner that proves it leaked nowhere.

Plant a canary where a real credential would be, drive the server as an attacker would, then
assert that no form of it came out::

    from canary import Canary

    canary = Canary.make("HF_TOKEN", prefix="hf_")    # a unique, long, random value
    monkeypatch.setenv(canary.name, canary.value)       # in the server's environment ...
    canary.store(home)                                  # ... and/or in secrets.json
    ...                                                 # tool calls, keeping what came back
    canary.assert_absent(home, result_text, log_text, image_bytes)

``assert_absent`` looks in every text or bytes given (tool results, errors, logs, images)
and in every file under the state directory (profiles, predictions, models, logs, the
database and its -wal/-shm bytes), except ``secrets.json`` itself, where a stored canary is
meant to be. ``forms()`` is what it looks for: the raw value, reversed, base64 and base64url
at each of the three byte offsets it can sit at inside a longer encoding, hex (both cases),
and split: each half of the value on its own (so a cut-off prefix, e.g. a value truncated for
display, or a secret printed in two pieces, is caught too). Values are at least 48
characters long, so each half is still unique.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

LENGTH = 64
ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Canary:
    name: str
    value: str

    @classmethod
    def make(cls, name: str, prefix: str = "", length: int = LENGTH) -> Canary:
        body = "".join(secrets.choice(ALPHABET) for _ in range(length - len(prefix) - 6))
        return cls(name, f"{prefix}canary{body}")

    def store(self, home: Path) -> Path:
        """Add the canary to ``home/secrets.json`` (0600), as ``mltrainer secrets set`` does."""
        path = home / "secrets.json"
        home.mkdir(parents=True, exist_ok=True)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[self.name] = self.value
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
        return path

    def forms(self) -> dict[str, str]:
        """Every form looked for, by a short description."""
        raw = self.value.encode()
        found = {"raw": self.value, "reversed": self.value[::-1]}
        found |= {"hex": raw.hex(), "HEX": raw.hex().upper()}
        for offset in range(3):
            for kind, encode in (
                ("base64", base64.b64encode),
                ("base64url", base64.urlsafe_b64encode),
            ):
                encoded = encode(b"\0" * offset + raw).decode()
                # The characters that depend on the value alone, whatever surrounds it.
                start, end = (offset * 8 + 5) // 6, ((offset + len(raw)) * 8) // 6
                found[f"{kind}@{offset}"] = encoded[start:end]
        half = len(self.value) // 2
        found |= {"first half": self.value[:half], "second half": self.value[half:]}
        return found

    def find(self, data: str | bytes) -> list[str]:
        """The forms present in ``data``."""
        blob = data.encode(errors="replace") if isinstance(data, str) else data
        return [kind for kind, form in self.forms().items() if form.encode() in blob]

    def assert_absent(self, home: Path | None, *outputs: str | bytes) -> None:
        """Fail, naming where and in which form, if the canary is in any output or any file
        under ``home`` (secrets.json excepted)."""
        leaks = [
            f"output #{i}: {kinds}" for i, out in enumerate(outputs) if (kinds := self.find(out))
        ]
        files = sorted(home.rglob("*")) if home is not None else []
        for path in files:
            if not path.is_file() or path.is_symlink() or path.name == "secrets.json":
                continue
            if kinds := self.find(path.read_bytes()):
                leaks.append(f"{path}: {kinds}")
        assert not leaks, f"the canary {self.name} leaked: " + "; ".join(leaks)
