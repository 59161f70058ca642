"""The Hugging Face Hub through its own client (``HfApi``): repository ids checked by the Hub's
rules, the token's right to write checked before anything is created, and every HTTP failure
turned into one of the project's errors that says what to do next.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from mltrainer.state.errors import (
    InvalidInput,
    MLTrainerError,
    NotFound,
    PermissionDenied,
    RemoteServiceError,
    SecretError,
)
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.tools import hf

if TYPE_CHECKING:
    from huggingface_hub import HfApi

TOKENS_PAGE = "https://huggingface.co/settings/tokens"
WRITE_PERMISSION = "repo.write"
# Organisation roles that may create and push to the organisation's repositories.
WRITING_ORG_ROLES = frozenset({"admin", "write", "contributor"})


def endpoint(settings: Settings) -> str:
    return hf.endpoint(settings)


def secret_values(vault: SecretVault, reference: str, destination: str) -> dict[str, str]:
    """The variables a reference stands for, resolved at the moment of use.

    The one place deployment reads the vault. ``destination`` is the URL the values are about
    to be sent to: the vault refuses a secret that is not bound to that host.
    """
    return vault.credential(reference, destination=destination)


def hub_token(vault: SecretVault, reference: str, destination: str) -> str:
    values = secret_values(vault, reference, destination)
    if len(values) != 1:
        raise SecretError(
            f"{reference} holds several values ({', '.join(sorted(values))}), not one token.",
            next_step="Pass the reference of a Hugging Face token, e.g. secret://HF_TOKEN.",
        )
    return next(iter(values.values()))


def client(settings: Settings, token: str | None) -> HfApi:
    return hf.api(settings, token)


# -- repository ids -------------------------------------------------------------------------


def check_repo_id(repo_id: str, what: str = "repo_id") -> tuple[str, str]:
    """``(namespace, name)`` of a repository id the Hub would accept; otherwise a clear error."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise InvalidInput(
            f"{what} '{str(repo_id)[:100]}' must be 'namespace/name' (your user name or an "
            "organisation, then the repository's name).",
            next_step="Pass e.g. 'alice/churn-model'.",
        )
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise InvalidInput(
            f"{what} '{repo_id[:100]}' is not a valid Hugging Face repository id: {exc}",
            next_step="Use letters, digits, '-', '_' and '.', at most 96 characters, not "
            "starting or ending with '-' or '.', and without '--' or '..'.",
        ) from None
    namespace, name = repo_id.split("/")
    return namespace, name


# -- the token ------------------------------------------------------------------------------


class TokenInfo(BaseModel):
    """What ``whoami`` says about a token (never the token itself)."""

    account: str
    role: str | None = Field(description="'read', 'write', 'fineGrained', or None if unsaid.")
    orgs: dict[str, str | None] = Field(default_factory=dict, description="org -> role in it")
    scoped: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Fine-grained tokens: entity name (user, org or repository) -> permissions.",
    )

    @classmethod
    def from_whoami(cls, answer: dict[str, Any]) -> TokenInfo:
        token = ((answer.get("auth") or {}).get("accessToken")) or {}
        scoped: dict[str, list[str]] = {}
        for item in (token.get("fineGrained") or {}).get("scoped") or []:
            entity = item.get("entity") or {}
            if entity.get("name"):
                scoped[str(entity["name"])] = [str(p) for p in item.get("permissions") or []]
        return cls(
            account=str(answer.get("name") or ""),
            role=token.get("role"),
            orgs={
                str(org["name"]): org.get("roleInOrg")
                for org in answer.get("orgs") or []
                if org.get("name")
            },
            scoped=scoped,
        )

    def writable_namespaces(self) -> list[str]:
        if self.role == "read":
            return []
        if self.role == "fineGrained":
            return sorted(n for n, perms in self.scoped.items() if WRITE_PERMISSION in perms)
        orgs = [org for org, role in self.orgs.items() if role is None or role in WRITING_ORG_ROLES]
        return [self.account, *sorted(orgs)]

    def refusal(self, repo_id: str) -> str | None:
        """Why this token cannot write ``repo_id``, or None when it can."""
        namespace = repo_id.split("/")[0]
        if self.role == "read":
            return f"The token (account '{self.account}') is read-only."
        if self.role == "fineGrained":
            for entity in (namespace, repo_id):
                if WRITE_PERMISSION in self.scoped.get(entity, []):
                    return None
            return (
                f"The fine-grained token of account '{self.account}' has no '{WRITE_PERMISSION}' "
                f"permission on '{namespace}' (it may write to: "
                f"{', '.join(self.writable_namespaces()) or 'nothing'})."
            )
        if namespace == self.account:
            return None
        if namespace not in self.orgs:
            return (
                f"The token belongs to the account '{self.account}', which is neither "
                f"'{namespace}' nor a member of an organisation of that name."
            )
        if self.orgs[namespace] is not None and self.orgs[namespace] not in WRITING_ORG_ROLES:
            return (
                f"The account '{self.account}' has the role '{self.orgs[namespace]}' in "
                f"'{namespace}', which cannot write repositories."
            )
        return None


def whoami(api: HfApi) -> TokenInfo:
    try:
        return TokenInfo.from_whoami(api.whoami())
    except Exception as exc:
        raise hub_error(exc, "checking the token (whoami)") from None


def check_can_write(api: HfApi, repo_ids: list[str], reference: str) -> TokenInfo:
    """The token's identity, after making sure it may write every one of ``repo_ids``.

    ``reference`` (e.g. secret://HF_TOKEN) is named in the advice, never resolved here.
    """
    name = reference.removeprefix("secret://")
    info = whoami(api)
    for repo_id in repo_ids:
        refusal = info.refusal(repo_id)
        if refusal:
            raise PermissionDenied(
                f"Cannot deploy to {repo_id}: {refusal}",
                next_step=f"Create a token with write access to '{repo_id.split('/')[0]}' at "
                f"{TOKENS_PAGE}, store it with set_secret('{name}'), or deploy under a "
                f"namespace the token may write to ({', '.join(info.writable_namespaces()) or 'none'}).",
            )
    return info


# -- errors ---------------------------------------------------------------------------------


def hub_error(exc: Exception, action: str) -> MLTrainerError:
    """One place that turns a failure of the Hub client into an error the caller can act on."""
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    if isinstance(exc, MLTrainerError):
        return exc
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    request_id = getattr(exc, "request_id", None)
    server = (getattr(exc, "server_message", None) or "").strip()[:300]
    detail = f": {server}" if server else ""
    if status == 401:
        return SecretError(
            f"The Hugging Face Hub rejected the token while {action} (HTTP 401){detail}.",
            next_step=f"Create a new token at {TOKENS_PAGE} and store it with "
            "set_secret('HF_TOKEN').",
        )
    if status == 403:
        return PermissionDenied(
            f"The Hugging Face Hub refused {action} (HTTP 403){detail}.",
            next_step="Use a token with write access to this namespace, or another namespace.",
        )
    if isinstance(exc, RepositoryNotFoundError) or status == 404:
        return NotFound(
            f"The Hugging Face Hub has no such repository while {action}{detail}.",
            next_step="Check the repository id and that the token's account can see it.",
        )
    if status in (409, 412):  # the parent commit we read is no longer the head
        return RemoteServiceError(
            f"The repository changed on the Hub while {action}{detail}",
            status=status,
            request_id=request_id,
            next_step="Deploy again: the files are compared with what it holds now.",
        )
    if isinstance(exc, HfHubHTTPError) and status is not None:
        return RemoteServiceError(
            f"The Hugging Face Hub answered an error while {action}{detail}",
            status=status,
            request_id=request_id,
            next_step="Wait a minute and try again."
            if status == 429 or status >= 500
            else "Check the arguments and try again.",
        )
    if isinstance(exc, ValueError):  # the client's own checks, e.g. invalid card metadata
        return InvalidInput(
            f"The Hugging Face client refused {action}: {str(exc)[:300]}",
            next_step="Report this: the deployment built something the Hub does not accept.",
        )
    return RemoteServiceError(
        f"Could not reach the Hugging Face Hub while {action} ({type(exc).__name__}).",
        next_step="Check the network connection (or MLTRAINER_HF_ENDPOINT / HF_ENDPOINT) and "
        "try again.",
    )
