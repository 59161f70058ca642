"""The secrets file: ``$MLTRAINER_HOME/secrets.json``, mode 0600, NAME -> value and hosts.

Every change is a read-modify-write under a lock that holds across threads and processes
(``filelock``: the server, a job worker and ``mltrainer secrets set`` may write at once), and
lands by an atomic rename, so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from mltrainer.state.errors import SecretError
from mltrainer.state.files import staged

LOCK_TIMEOUT_S = 30


class Entry(NamedTuple):
    value: str
    hosts: list[str]  # empty: fixed by a built-in or configured declaration, or the URL's host


class SecretsFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, Entry]:
        """NAME -> entry. An entry written before hosts existed (a bare value) has none."""
        if not self.path.exists():
            return {}
        mode = self.path.stat().st_mode & 0o777
        if mode & 0o077:
            raise SecretError(
                f"The secrets file {self.path} is readable by other users (mode {mode:o}).",
                next_step=f"Run 'chmod 600 {self.path}' and try again.",
            )
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise SecretError(
                f"The secrets file {self.path} cannot be read ({type(exc).__name__}).",
                next_step="Fix or delete it, then set secrets again with "
                "'mltrainer secrets set NAME'.",
            ) from None
        entries: dict[str, Entry] = {}
        for name, entry in (data if isinstance(data, dict) else {}).items():
            if isinstance(entry, dict):
                hosts = [str(host) for host in entry.get("hosts") or []]
                entries[str(name)] = Entry(str(entry.get("value") or ""), hosts)
            else:
                entries[str(name)] = Entry(str(entry), [])
        return entries

    @contextmanager
    def update(self) -> Iterator[dict[str, Entry]]:
        """The entries, to change in place; written back when the block ends without error."""
        from filelock import FileLock, Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = FileLock(self.path.with_name(self.path.name + ".lock"), mode=0o600)
        try:
            lock.acquire(timeout=LOCK_TIMEOUT_S)
        except Timeout:
            raise SecretError(
                f"Another process has held the lock on {self.path} for {LOCK_TIMEOUT_S} s.",
                next_step="Try again in a moment.",
            ) from None
        try:
            entries = self.read()
            yield entries
            self._write(entries)
        finally:
            lock.release()

    def _write(self, entries: dict[str, Entry]) -> None:
        data = {name: {"value": e.value, "hosts": e.hosts} for name, e in entries.items()}
        with staged(self.path) as tmp:
            tmp.write_text(json.dumps(data), encoding="utf-8")
