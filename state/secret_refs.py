"""Secret references and the credentials built into the server.

``secret://NAME`` is how tools name a credential: never a value. The built-in credentials are
bound to their services: ``HF_TOKEN`` to the configured Hugging Face endpoint, ``KAGGLE``
(``KAGGLE_USERNAME`` + ``KAGGLE_KEY``, or ``KAGGLE_API_TOKEN``) to Kaggle's API and ``MODAL``
(``MODAL_TOKEN_ID`` + ``MODAL_TOKEN_SECRET``) to Modal's. The models here describe a declared
secret, a listing entry and the outcome of storing one; ``state.secrets`` holds the vault.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel

from mltrainer.state.destinations import host_of_url
from mltrainer.state.errors import SecretError
from mltrainer.state.masking import masking_problem
from mltrainer.state.settings import Settings

PREFIX = "secret://"
NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
HUB_URL = "https://huggingface.co"
KAGGLE_API_URL = "https://api.kaggle.com"
MODAL_API_URL = "https://api.modal.com"

# Composite secrets: each alternative is a tuple of variables that together make the secret;
# the first complete alternative wins.
COMPOSITE: dict[str, tuple[tuple[str, ...], ...]] = {
    "KAGGLE": (("KAGGLE_USERNAME", "KAGGLE_KEY"), ("KAGGLE_API_TOKEN",)),
    "MODAL": (("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"),),
}
WELL_KNOWN = ("HF_TOKEN", "KAGGLE", "MODAL")
PART_OF = {var: name for name, alts in COMPOSITE.items() for alt in alts for var in alt}
# Identifiers rather than secrets: they appear in references (kaggle:USERNAME/data), so they
# are neither masked nor held to the masking rules.
PUBLIC_FIELDS = frozenset({"KAGGLE_USERNAME"})
# Environment variables whose values are masked even when no tool refers to them.
SENSITIVE_ENV_RE = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|_KEY$|CREDENTIAL)", re.I)

DeclaredBy = Literal["built-in", "configuration", "registered"]


class SecretNotSet(SecretError):
    """A declared secret with no value yet."""


class NotDeclared(SecretError):
    """A name that is neither built in, configured nor registered."""


class Declaration(BaseModel):
    """Who declared a secret and the hosts it may be sent to (empty: the host in its URL)."""

    name: str
    declared_by: DeclaredBy
    hosts: list[str]

    @property
    def fixed(self) -> bool:
        """Hosts set by the service or the configuration, not by whoever stores the value."""
        return self.declared_by != "registered"

    @property
    def reads_environment(self) -> bool:
        return self.declared_by != "registered"


class SecretInfo(BaseModel):
    name: str
    reference: str
    declared_by: DeclaredBy
    source: Literal["env", "file", "unset"]
    fields: list[str]
    hosts: list[str]
    valid: bool
    problem: str | None = None
    note: str | None = None


class StoredSecret(BaseModel):
    """What ``SecretVault.set`` did: where the value may go and whether it is in effect."""

    name: str
    reference: str
    hosts: list[str]
    overridden_by: list[str]

    @property
    def message(self) -> str:
        where = ", ".join(self.hosts) or "the host inside its URL"
        if self.overridden_by:
            return (
                f"Stored {self.name}, but the server's environment variable "
                f"{' and '.join(self.overridden_by)} is set and takes precedence: the stored "
                "value is used only once it is unset and the server restarted."
            )
        return (
            f"Stored {self.name}; pass {self.reference} to tools. It may be sent to {where} only."
        )


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


def format_problem(var: str, value: str) -> str | None:
    if value != value.strip():
        return f"{var} has leading or trailing white space"
    known = FORMATS.get(var)
    if known and not known[0].fullmatch(value):
        return f"{var} does not look right: {known[1]}"
    if var not in PUBLIC_FIELDS and (why := masking_problem(value)):
        return f"{var} cannot be masked safely: {why}"
    return None


def hub_url(settings: Settings, environ: Mapping[str, str]) -> str:
    """The Hugging Face endpoint HF_TOKEN is bound to (and that the Hub client talks to)."""
    return (settings.hf_endpoint or environ.get("HF_ENDPOINT") or HUB_URL).rstrip("/")


def kaggle_api_url(settings: Settings) -> str:
    return (settings.kaggle_api_endpoint or KAGGLE_API_URL).rstrip("/")


def modal_api_url(settings: Settings, environ: Mapping[str, str]) -> str:
    return (settings.modal_api_endpoint or environ.get("MODAL_SERVER_URL") or MODAL_API_URL).rstrip(
        "/"
    )


def builtin_hosts(settings: Settings, environ: Mapping[str, str]) -> dict[str, list[str]]:
    """The hosts each built-in credential may go to: its configured endpoint, or the service."""
    kaggle = [host_of_url(kaggle_api_url(settings)) or "api.kaggle.com"]
    if not settings.kaggle_api_endpoint:
        kaggle = ["kaggle.com", "*.kaggle.com"]
    modal = [host_of_url(modal_api_url(settings, environ)) or "api.modal.com"]
    if not (settings.modal_api_endpoint or environ.get("MODAL_SERVER_URL")):
        modal = ["modal.com", "*.modal.com"]
    return {
        "HF_TOKEN": [host_of_url(hub_url(settings, environ)) or "huggingface.co"],
        "KAGGLE": kaggle,
        "MODAL": modal,
    }
