"""Secret references (``secret://NAME``): declared, bound to the hosts they may be sent to,
resolved at the moment of use, stored nowhere but the environment or a 0600 secrets file.

A reference resolves only to a *declared* secret, never to whatever environment variable
happens to have its name:

- the built-in credentials, each bound to its service: ``HF_TOKEN`` (the configured Hub),
  ``KAGGLE`` (``KAGGLE_USERNAME`` + ``KAGGLE_KEY``, or ``KAGGLE_API_TOKEN``; Kaggle's API) and
  ``MODAL`` (``MODAL_TOKEN_ID`` + ``MODAL_TOKEN_SECRET``; Modal's API), read from the
  environment first, then the secrets file;
- names declared in configuration (``MLTRAINER_SECRETS``, NAME -> hosts), read the same way;
- names the person registered (``set_secret``, ``mltrainer secrets set NAME --host HOST``),
  read from the secrets file only, so registering a name never releases an environment
  variable of that name.

Every use names its destination (``vault.credential(ref, destination=url)``) and any host
the secret is not bound to is refused with the reason. A secret whose value is itself a URL
(a database URL) is bound to the host inside it unless hosts were given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from mltrainer.state.destinations import (
    check_destination,
    host_of_url,
    normalize_host,
    password_of_url,
)
from mltrainer.state.errors import SecretError
from mltrainer.state.masking import Masker, masking_problem
from mltrainer.state.secret_refs import (
    COMPOSITE,
    NAME_RE,
    PART_OF,
    PREFIX,
    PUBLIC_FIELDS,
    SENSITIVE_ENV_RE,
    WELL_KNOWN,
    Declaration,
    NotDeclared,
    SecretInfo,
    SecretNotSet,
    StoredSecret,
    builtin_hosts,
    format_problem,
    hub_url,
    kaggle_api_url,
    modal_api_url,
    parse_reference,
)
from mltrainer.state.secrets_file import Entry, SecretsFile
from mltrainer.state.settings import Settings

__all__ = [
    "PREFIX",
    "SecretInfo",
    "SecretNotSet",
    "SecretVault",
    "StoredSecret",
    "hub_url",
    "kaggle_api_url",
    "modal_api_url",
    "parse_reference",
]


class SecretVault:
    """Declared secrets: looked up in the environment and the secrets file, sent only to
    the hosts they are bound to. Writes to the file hold a lock that works across processes.

    ``settings`` gives the endpoints the built-in credentials are bound to and the secrets
    declared in configuration; without it they are read from the environment (``Settings()``).
    """

    def __init__(
        self,
        path: Path,
        environ: Mapping[str, str] | None = None,
        *,
        settings: Settings | None = None,
    ) -> None:
        self.path = path
        self._file = SecretsFile(path)
        self._environ = environ if environ is not None else os.environ
        self._settings = settings

    @classmethod
    def for_settings(
        cls, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> SecretVault:
        return cls(settings.secrets_path, environ, settings=settings)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings()
        return self._settings

    # -- declarations -------------------------------------------------------------------
    def declaration(self, name: str) -> Declaration:
        """How ``name`` is declared; an undeclared name is refused, whatever the environment."""
        if name in WELL_KNOWN:
            hosts = builtin_hosts(self.settings, self._environ)[name]
            return Declaration(name=name, declared_by="built-in", hosts=hosts)
        if name in PART_OF:
            raise SecretError(
                f"secret://{name} is part of secret://{PART_OF[name]}.",
                next_step=f"Pass secret://{PART_OF[name]}.",
            )
        configured = self._configured()
        if name in configured:
            return Declaration(name=name, declared_by="configuration", hosts=configured[name])
        stored = self._file.read().get(name)
        if stored is not None:
            return Declaration(name=name, declared_by="registered", hosts=stored.hosts)
        raise NotDeclared(
            f"secret://{name} is not a declared secret; an environment variable of that name is "
            "never used on its own.",
            next_step="Use secret://HF_TOKEN, secret://KAGGLE or secret://MODAL, or a secret the "
            "person registered (see list_secrets); the person can add one with set_secret or "
            f"'mltrainer secrets set {name} --host HOST', or declare it in MLTRAINER_SECRETS.",
        )

    def _configured(self) -> dict[str, list[str]]:
        declared: dict[str, list[str]] = {}
        for name, hosts in self.settings.secrets.items():
            if not NAME_RE.fullmatch(name) or name in WELL_KNOWN or name in PART_OF:
                raise SecretError(
                    f"MLTRAINER_SECRETS declares '{name[:40]}', which it cannot: names are "
                    "upper-case letters, digits and underscores, and the built-in credentials "
                    "(HF_TOKEN, KAGGLE, MODAL and their parts) are bound to their services.",
                    next_step="Fix MLTRAINER_SECRETS and restart the server.",
                )
            declared[name] = [normalize_host(host) for host in hosts]
        return declared

    def _intended(self, name: str) -> Declaration:
        """The declaration ``name`` has, or would have once the person registers it."""
        try:
            return self.declaration(PART_OF.get(name, name))
        except NotDeclared:
            return Declaration(name=name, declared_by="registered", hosts=[])

    def binding(self, name: str) -> Declaration:
        """For the entry page: the hosts ``name`` is or would be bound to, and whether fixed."""
        parse_reference(PREFIX + name)
        if name in COMPOSITE:
            parts = " + ".join(COMPOSITE[name][0])
            raise SecretError(
                f"{name} is made of several values ({parts}).",
                next_step=f"Set each one by its own name, e.g. set_secret('{COMPOSITE[name][0][0]}').",
            )
        declared = self._intended(name)
        return declared.model_copy(update={"name": name})

    # -- lookup -------------------------------------------------------------------------
    def _values(
        self, declared: Declaration, typed: Mapping[str, str] | None = None
    ) -> tuple[dict[str, str], str]:
        """The variables a declared secret stands for, and where they came from; ``typed``
        holds parts the person is entering now, which win over stored ones."""
        file = {name: value for name, (value, _) in self._file.read().items() if value}
        environ = self._environ if declared.reads_environment else {}
        for alternative in COMPOSITE.get(declared.name, ((declared.name,),)):
            found = {}
            for var in alternative:
                if typed and typed.get(var):
                    found[var] = (typed[var], "file")
                elif environ.get(var):
                    found[var] = (environ[var], "env")
                elif file.get(var):
                    found[var] = (file[var], "file")
            if len(found) == len(alternative):
                from_env = all(source == "env" for _, source in found.values())
                return {v: value for v, (value, _) in found.items()}, "env" if from_env else "file"
        return {}, "unset"

    @staticmethod
    def _hosts(declared: Declaration, values: dict[str, str]) -> list[str]:
        if declared.hosts:
            return declared.hosts
        own = [host_of_url(value) for value in values.values()]
        return [host for host in own if host]

    def credential(self, reference: str, *, destination: str) -> dict[str, str]:
        """The variables ``reference`` stands for (e.g. {'HF_TOKEN': '...'}), once
        ``destination`` (the URL they are about to be sent to) is one of its bound hosts."""
        name = parse_reference(reference)
        declared = self.declaration(name)
        values, _ = self._values(declared)
        hosts = self._hosts(declared, values)
        if hosts:
            check_destination(reference, hosts, destination)
        if not values:
            raise self._not_set(reference, name)
        if not hosts:
            raise SecretError(
                f"{reference} is bound to no host, so it is sent nowhere.",
                next_step=f"Ask the person to store it again with the host(s) it belongs to "
                f"(set_secret, or 'mltrainer secrets set {name} --host HOST').",
            )
        return values

    def credential_with(
        self, reference: str, *, destination: str, typed: Mapping[str, str]
    ) -> dict[str, str] | None:
        """The variables ``reference`` would stand for once the parts in ``typed`` are stored
        (to check a value live before storing it), or None while a part is still missing."""
        name = parse_reference(reference)
        declared = self.declaration(name)
        values, _ = self._values(declared, typed)
        check_destination(reference, self._hosts(declared, values), destination)
        return values or None

    def credential_value(self, reference: str, *, destination: str) -> str:
        """One value: the secret itself, or the JSON of a composite secret's fields."""
        values = self.credential(reference, destination=destination)
        return next(iter(values.values())) if len(values) == 1 else json.dumps(values)

    def url_credential(self, reference: str) -> str:
        """A secret that is itself a URL (e.g. a database URL), once the host inside it is
        one it may be sent to: a token or key that is not a URL is refused."""
        name = parse_reference(reference)
        declared = self.declaration(name)
        values, _ = self._values(declared)
        if not values:
            raise self._not_set(reference, name)
        value = next(iter(values.values()))
        host = host_of_url(value)
        if len(values) != 1 or host is None:
            raise SecretError(
                f"{reference} is not a URL with a host (such as a database URL).",
                next_step="Pass the secret that holds the connection URL.",
            )
        scheme = value.split("://", 1)[0]  # the value's own user part never reaches a message
        check_destination(reference, self._hosts(declared, values), f"{scheme}://{host}")
        return value

    def _not_set(self, reference: str, name: str) -> SecretNotSet:
        parts = COMPOSITE.get(name, ((name,),))[0]
        how = " and ".join(f"'mltrainer secrets set {part}'" for part in parts)
        return SecretNotSet(
            f"The secret {reference} is not set.",
            next_step=f"Set the environment variable(s) {' + '.join(parts)} for the server, or "
            f"run {how} (or ask the person with the set_secret tool) and try again.",
        )

    def env_overrides(self, name: str) -> list[str]:
        """Environment variables that win over the stored value of ``name``."""
        declared = self._intended(name)
        return [name] if declared.reads_environment and self._environ.get(name) else []

    # -- writing ------------------------------------------------------------------------
    def set(self, name: str, value: str, hosts: list[str] | None = None) -> StoredSecret:
        """Store ``value`` as ``name``, bound to ``hosts`` (for a registered name); refuses a
        value that cannot be masked safely and a name with nowhere to go, with the reason."""
        declared = self.binding(name)
        if not value:
            raise SecretError(f"Refusing to store an empty value for {name}.")
        if value != value.strip():
            raise SecretError(
                f"The value of {name} has leading or trailing white space (a copy-paste slip?).",
                next_step="Enter it again without them.",
            )
        if name not in PUBLIC_FIELDS and (why := masking_problem(value)):
            raise SecretError(
                f"Refusing to store this value for {name}: {why}, so it could not be masked "
                "safely in what the server shows.",
                next_step="Store the real credential (8 characters at least, not a common word "
                "or number).",
            )
        wanted = [normalize_host(host) for host in hosts or [] if host.strip()]
        by = "its service" if declared.declared_by == "built-in" else "MLTRAINER_SECRETS"
        if declared.fixed and wanted and wanted != declared.hosts:
            raise SecretError(
                f"{name} may be sent to {', '.join(declared.hosts) or 'the host in its URL'} "
                f"only; its hosts are set by {by}.",
                next_step="Store it without hosts.",
            )
        bound = declared.hosts if declared.fixed else wanted
        if not bound and host_of_url(value) is None:
            raise SecretError(
                f"Name the host(s) {name} may be sent to, e.g. 'api.example.com'."
                if not declared.fixed
                else f"{by} binds {name} to no host, so only a URL value can be stored.",
                next_step="A URL value (such as a database URL) may go to the host inside it "
                "without naming hosts.",
            )
        with self._file.update() as entries:
            entries[name] = Entry(value, [] if declared.fixed else wanted)
        return StoredSecret(
            name=name,
            reference=PREFIX + PART_OF.get(name, name),
            hosts=bound or [str(host_of_url(value))],
            overridden_by=self.env_overrides(name),
        )

    def delete(self, name: str) -> bool:
        with self._file.update() as entries:
            return entries.pop(name, None) is not None

    # -- listing ------------------------------------------------------------------------
    def info(self, name: str) -> SecretInfo:
        declared = self.declaration(name)
        values, source = self._values(declared)
        hosts = self._hosts(declared, values)
        problems = [p for var, value in values.items() if (p := format_problem(var, value))]
        if values and not hosts:
            problems.append("bound to no host")
        note = None
        if source == "env" and any(var in self._file.read() for var in values):
            note = "the environment overrides the stored value"
        elif not declared.reads_environment and self._environ.get(name):
            note = f"the environment variable {name} is not used for a registered secret"
        return SecretInfo(
            name=name,
            reference=PREFIX + name,
            declared_by=declared.declared_by,
            source=source,  # type: ignore[arg-type]
            fields=sorted(values),
            hosts=hosts,
            valid=bool(values) and not problems,
            problem="not set" if not values else "; ".join(problems) or None,
            note=note,
        )

    def infos(self) -> list[SecretInfo]:
        names = list(WELL_KNOWN) + sorted(self._configured())
        names += sorted(set(self._file.read()) - set(names) - set(PART_OF))
        return [self.info(name) for name in names]

    # -- masking ------------------------------------------------------------------------
    def known_values(self) -> list[tuple[str, str]]:
        """Every secret value this process could reveal, for the masker (the password inside
        a URL value on its own too, as drivers print URLs with it)."""
        stored = self._file.read()
        pairs = [(n, v) for n, (v, _) in stored.items() if n not in PUBLIC_FIELDS]
        declared = {*PART_OF, *WELL_KNOWN, *self.settings.secrets, *stored} - PUBLIC_FIELDS
        for var, value in self._environ.items():
            if value and (var in declared or SENSITIVE_ENV_RE.search(var)):
                pairs.append((var, value))
        pairs += [(name, pw) for name, value in pairs if (pw := password_of_url(value))]
        if self.settings.http_token is not None:
            pairs.append(("HTTP_TOKEN", self.settings.http_token.get_secret_value()))
        token_file = self.settings.http_token_path
        if token_file.is_file():
            pairs.append(("HTTP_TOKEN", token_file.read_text().strip()))
        return pairs

    def masker(self) -> Masker:
        masker = Masker()
        masker.add_many(self.known_values())
        return masker
