"""Secret references (``secret://NAME``): parsed, resolved at the moment of use, never stored
anywhere but the environment or a 0600 secrets file in the state directory.

Well-known names map onto the conventional environment variables of each service:
``HF_TOKEN``; ``KAGGLE`` (``KAGGLE_USERNAME`` + ``KAGGLE_KEY``, or ``KAGGLE_API_TOKEN``);
``MODAL`` (``MODAL_TOKEN_ID`` + ``MODAL_TOKEN_SECRET``). Any other name resolves from the
environment variable or file entry of the same name.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from mltrainer.state.errors import SecretError
from mltrainer.state.masking import Masker

PREFIX = "secret://"
NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")

# Composite secrets: each alternative is a tuple of environment variables that together
# make the secret; the first complete alternative wins.
COMPOSITE: dict[str, tuple[tuple[str, ...], ...]] = {
    "KAGGLE": (("KAGGLE_USERNAME", "KAGGLE_KEY"), ("KAGGLE_API_TOKEN",)),
    "MODAL": (("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"),),
}
WELL_KNOWN = ("HF_TOKEN", "KAGGLE", "MODAL")
# Environment variables whose values are masked even when no tool refers to them.
SENSITIVE_ENV_RE = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|_KEY$|CREDENTIAL)", re.I)


class SecretInfo(BaseModel):
    name: str
    reference: str
    source: Literal["env", "file", "unset"]
    fields: list[str]
    valid: bool
    problem: str | None = None


def parse_reference(reference: str) -> str:
    """The NAME in ``secret://NAME``; anything else is refused before any lookup."""
    if not isinstance(reference, str) or not reference.startswith(PREFIX):
        raise SecretError(
            f"'{_preview(reference)}' is not a secret reference.",
            next_step="Pass a reference such as 'secret://HF_TOKEN', never a secret value.",
        )
    name = reference[len(PREFIX) :]
    if not NAME_RE.fullmatch(name):
        raise SecretError(
            f"Malformed secret reference '{_preview(reference)}'.",
            next_step="Names are upper-case letters, digits and underscores, e.g. "
            "'secret://HF_TOKEN', 'secret://KAGGLE', 'secret://MODAL'.",
        )
    return name


def _preview(value: object) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


# The shapes of well-known credentials, to catch a value pasted into the wrong name.
FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "HF_TOKEN": (re.compile(r"^hf_[A-Za-z0-9]{20,}$"), "a Hugging Face token starts with 'hf_'"),
    "KAGGLE_KEY": (re.compile(r"^[0-9a-f]{32}$"), "a Kaggle key is 32 hexadecimal characters"),
    "KAGGLE_API_TOKEN": (
        re.compile(r"^\S{16,}$"),
        "a Kaggle API token is one word of 16+ characters",
    ),
    "MODAL_TOKEN_ID": (re.compile(r"^ak-\S+$"), "a Modal token id starts with 'ak-'"),
    "MODAL_TOKEN_SECRET": (re.compile(r"^as-\S+$"), "a Modal token secret starts with 'as-'"),
}


def _format_problem(var: str, value: str) -> str | None:
    if value != value.strip():
        return f"{var} has leading or trailing white space"
    known = FORMATS.get(var)
    if known and not known[0].fullmatch(value):
        return f"{var} does not look right: {known[1]}"
    return None


class SecretVault:
    """Looks secrets up in the environment, then in the secrets file."""

    def __init__(self, path: Path, environ: Mapping[str, str] | None = None) -> None:
        self.path = path
        self._environ = environ if environ is not None else os.environ

    # -- file ---------------------------------------------------------------------------
    def _read_file(self) -> dict[str, str]:
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
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def set(self, name: str, value: str) -> None:
        parse_reference(PREFIX + name)
        if not value:
            raise SecretError(f"Refusing to store an empty value for {name}.")
        data = self._read_file()
        data[name] = value
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
        os.replace(tmp, self.path)

    def delete(self, name: str) -> bool:
        data = self._read_file()
        if data.pop(name, None) is None:
            return False
        self.path.write_text(json.dumps(data))
        return True

    # -- lookup -------------------------------------------------------------------------
    def _lookup(self, var: str, file: dict[str, str]) -> tuple[str, str] | None:
        if self._environ.get(var):
            return self._environ[var], "env"
        if file.get(var):
            return file[var], "file"
        return None

    def _fields(self, name: str) -> tuple[dict[str, str], str]:
        file = self._read_file()
        for alternative in COMPOSITE.get(name, ((name,),)):
            found = [self._lookup(var, file) for var in alternative]
            if all(found):
                sources = {hit[1] for hit in found if hit}
                values = {var: hit[0] for var, hit in zip(alternative, found, strict=True) if hit}
                return values, "env" if sources == {"env"} else "file"
        return {}, "unset"

    def resolve(self, reference: str) -> dict[str, str]:
        """The variables a reference stands for, e.g. {'HF_TOKEN': '...'}; raises if unset."""
        name = parse_reference(reference)
        values, _ = self._fields(name)
        if not values:
            wanted = " + ".join(COMPOSITE.get(name, ((name,),))[0])
            raise SecretError(
                f"The secret {reference} is not set.",
                next_step=f"Set the environment variable(s) {wanted} for the server, or run "
                f"'mltrainer secrets set {name}' (or the set_secret tool) and try again.",
            )
        return values

    def resolve_one(self, reference: str) -> str:
        values = self.resolve(reference)
        return next(iter(values.values())) if len(values) == 1 else json.dumps(values)

    def info(self, name: str) -> SecretInfo:
        values, source = self._fields(name)
        problems = [p for var, value in values.items() if (p := _format_problem(var, value))]
        problem = "not set" if not values else "; ".join(problems) or None
        return SecretInfo(
            name=name,
            reference=PREFIX + name,
            source=source,  # type: ignore[arg-type]
            fields=sorted(values),
            valid=bool(values) and not problems,
            problem=problem,
        )

    def infos(self) -> list[SecretInfo]:
        names = list(WELL_KNOWN)
        composite_vars = {var for alts in COMPOSITE.values() for alt in alts for var in alt}
        names += sorted(set(self._read_file()) - set(names) - composite_vars)
        return [self.info(name) for name in names]

    # -- masking ------------------------------------------------------------------------
    def known_values(self) -> list[tuple[str, str]]:
        """Every secret value this process could reveal, for the masker."""
        pairs = [(name, value) for name, value in self._read_file().items()]
        for var, value in self._environ.items():
            if value and SENSITIVE_ENV_RE.search(var):
                pairs.append((var, value))
        return pairs

    def masker(self) -> Masker:
        masker = Masker()
        masker.add_many(self.known_values())
        return masker
