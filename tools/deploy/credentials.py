"""Credentials checked live against their service, for ``list_secrets(validate=True)`` and for
``set_secret`` before a value is stored: ``valid``, ``invalid`` (the service refused it) or
``unreachable`` (no answer, or a server error: nothing is known), with the account and role.
The value itself never appears in a result or a message.

Hugging Face: ``whoami`` with the token's role and the namespaces it may write to. Kaggle: an
authenticated lightweight call through the official client (a token is introspected; a
username and key list one of the account's own datasets).
"""

from __future__ import annotations

from typing import Any

from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.tools.deploy import hub
from mltrainer.tools.deploy.models import CredentialCheck

INVALID_STATUSES = frozenset({401, 403})
KAGGLE_API = "https://api.kaggle.com"


def kaggle_url(settings: Settings) -> str:
    return (settings.kaggle_api_endpoint or KAGGLE_API).rstrip("/")


def _status(exc: BaseException) -> int | None:
    return getattr(getattr(exc, "response", None), "status_code", None)


def check_hf_token(token: str, settings: Settings) -> CredentialCheck:
    """Ask the Hub who the token belongs to and what it may do."""
    try:
        info = hub.TokenInfo.from_whoami(hub.client(settings, token).whoami())
    except Exception as exc:
        if _status(exc) in INVALID_STATUSES:
            return CredentialCheck(
                service="huggingface",
                status="invalid",
                message="The Hugging Face Hub does not accept this token (revoked, expired or "
                f"mistyped). Create a new one at {hub.TOKENS_PAGE}.",
            )
        return _unreachable("huggingface", "the Hugging Face Hub", exc)
    writable = info.writable_namespaces()
    if info.role == "read":
        advice = "It is read-only: deploy_model needs a token with write access."
    elif writable:
        advice = f"It may write to: {', '.join(writable)}."
    else:
        advice = "It may not write to any namespace: deploy_model would be refused."
    return CredentialCheck(
        service="huggingface",
        status="valid",
        account=info.account,
        role=info.role,
        can_write=writable,
        message=f"A valid token of the account '{info.account}' (role {info.role or 'unknown'}). "
        + advice,
    )


def check_kaggle(credentials: dict[str, str], settings: Settings) -> CredentialCheck:
    """``credentials`` as the vault resolves secret://KAGGLE: a username and key, or a token."""
    from mltrainer.tools.datasets.kaggle_source import make_api, quiet_stdout

    api = make_api(settings, credentials)
    token = credentials.get("KAGGLE_API_TOKEN")
    try:
        with quiet_stdout():
            account = _introspect(api, token) if token else _list_own(api, credentials)
    except Exception as exc:
        if _status(exc) in INVALID_STATUSES or isinstance(exc, PermissionError):
            return CredentialCheck(
                service="kaggle",
                status="invalid",
                message="Kaggle does not accept these credentials. Create a new API token at "
                "https://www.kaggle.com/settings and store it with set_secret.",
            )
        return _unreachable("kaggle", "Kaggle", exc)
    return CredentialCheck(
        service="kaggle",
        status="valid",
        account=account,
        role="access_token" if token else "api_key",
        message=f"Valid Kaggle credentials of the account '{account}'.",
    )


def _introspect(api: Any, token: str) -> str:
    from kagglesdk.security.types.oauth_service import IntrospectTokenRequest

    request = IntrospectTokenRequest()
    request.token = token
    with api.build_kaggle_client() as client:
        answer = client.security.oauth_client.introspect_token(request)
    if not answer.active or not answer.username:
        raise PermissionError("inactive token")
    return str(answer.username)


def _list_own(api: Any, credentials: dict[str, str]) -> str:
    api.dataset_list_with_response(mine=True, page_size=1)  # refused without valid credentials
    return credentials.get("KAGGLE_USERNAME", "")


def _unreachable(service: Any, name: str, exc: Exception) -> CredentialCheck:
    status = _status(exc)
    why = f"it answered HTTP {status}" if status else f"no answer ({type(exc).__name__})"
    return CredentialCheck(
        service=service,
        status="unreachable",
        message=f"Could not check the credentials with {name}: {why}. Try again later.",
    )


def check_secret(name: str, vault: SecretVault, settings: Settings) -> CredentialCheck | None:
    """For list_secrets(validate=True): the live check of a well-known secret that is set
    (HF_TOKEN, KAGGLE), or None for other names."""
    if name == "HF_TOKEN":
        token = hub.hub_token(vault, "secret://HF_TOKEN", hub.endpoint(settings))
        return check_hf_token(token, settings)
    if name == "KAGGLE":
        return check_kaggle(
            hub.secret_values(vault, "secret://KAGGLE", kaggle_url(settings)), settings
        )
    return None


def check_value(
    name: str, value: str, vault: SecretVault, settings: Settings
) -> CredentialCheck | None:
    """For set_secret, before storing: the live check of a value typed for ``name``, or None
    when ``name`` is not a kind we can check (or needs a part that is not set yet)."""
    if name == "HF_TOKEN":
        return check_hf_token(value, settings)
    if name == "KAGGLE_API_TOKEN":
        return check_kaggle({"KAGGLE_API_TOKEN": value}, settings)
    if name in ("KAGGLE_KEY", "KAGGLE_USERNAME"):
        both = vault.credential_with(
            "secret://KAGGLE", destination=kaggle_url(settings), typed={name: value}
        )
        # None: the other half is not set yet, so there is nothing to check against.
        return check_kaggle(both, settings) if both and name in both else None
    return None
