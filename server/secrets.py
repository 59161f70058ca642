"""Secret tools: list_secrets and set_secret. Values never pass through here."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from mcp.server import MCPServer
from mcp.types import ToolAnnotations
from mcp_types import ElicitRequest, ElicitRequestURLParams, InputRequiredResult
from pydantic import BaseModel, Field

from mltrainer.server.context import AppContext, AppCtx, app_context
from mltrainer.server.errors import tool_errors
from mltrainer.server.secret_entry import Pending
from mltrainer.state.secrets import SecretInfo
from mltrainer.tools.deploy.models import CredentialCheck

ENTRY_WAIT_S = 300
ENTRY_KEY = "secret_entry"


class SecretList(BaseModel):
    secrets: list[SecretInfo]
    checks: dict[str, CredentialCheck] = Field(
        default_factory=dict,
        description="With validate=true: each set credential checked against its service "
        "(valid | invalid | unreachable), with its account and role; never the value.",
    )
    store: str = Field(description="Where stored secrets live (a 0600 file).")
    how_to_set: str


class SetSecretResult(BaseModel):
    name: str
    reference: str
    status: Literal["set", "overridden", "pending", "declined"] = Field(
        description="'overridden': stored, but an environment variable of the server wins."
    )
    hosts: list[str] = Field(
        default_factory=list, description="Where the secret may be sent (once set)."
    )
    url: str | None = Field(
        default=None,
        description="One-time local page where the person types the value (when pending).",
    )
    message: str


def register(mcp: MCPServer[AppContext]) -> None:
    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    @tool_errors
    async def list_secrets(
        ctx: AppCtx,
        validate: Annotated[
            bool,
            Field(
                description="Also check each set credential live against its service (Hugging "
                "Face whoami with the token's role; Kaggle an authenticated call): valid, "
                "invalid or unreachable, and the account name."
            ),
        ] = False,
    ) -> SecretList:
        """The secrets the server knows: name, reference to pass to tools (secret://NAME), who
        declared it, where its value comes from (environment or secrets file), the hosts it may
        be sent to, and whether it is set. Never values. Only these references resolve."""
        app = app_context(ctx)
        infos = app.vault.infos()
        checks = await app.run_blocking(lambda: _checks(app, infos)) if validate else {}
        return SecretList(
            secrets=infos,
            checks=checks,
            store=str(app.settings.secrets_path),
            how_to_set="Call set_secret(name, hosts) (the person types the value on a local page "
            "and confirms the hosts), or the person runs 'mltrainer secrets set NAME --host HOST'. "
            "HF_TOKEN, KAGGLE_* and MODAL_* may also come from the server's environment; other "
            "environment variables only when declared in MLTRAINER_SECRETS.",
        )

    @mcp.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, open_world_hint=False
        )
    )
    @tool_errors
    async def set_secret(
        name: Annotated[
            str,
            Field(
                pattern=r"^[A-Z][A-Z0-9_]{0,63}$",
                description="e.g. HF_TOKEN, KAGGLE_USERNAME, KAGGLE_KEY, MODAL_TOKEN_ID, or a "
                "new name such as MY_API_KEY.",
            ),
        ],
        ctx: AppCtx,
        hosts: Annotated[
            list[str] | None,
            Field(
                max_length=10,
                description="For a new name: the host(s) it may be sent to, e.g. "
                "['api.example.com'] ('*.example.com' for subdomains), which the person confirms "
                "on the page. Leave out for HF_TOKEN, KAGGLE_*, MODAL_* (bound to their services) "
                "and for a URL value such as a database URL (bound to the host inside it).",
            ),
        ] = None,
    ) -> SetSecretResult | InputRequiredResult:
        """Ask the person to enter a secret. Never pass the value: this opens a one-time local
        page (URL elicitation) where the person types it; the value is stored in the server's
        secrets file, usable as secret://NAME and sent only to its hosts. Values too short or
        too common to mask safely are refused on the page. Waits for the person a few minutes."""
        app = app_context(ctx)
        reference = f"secret://{name}"
        responses = ctx.input_responses or {}
        if ENTRY_KEY in responses:  # the client came back after showing the page (2026-07-28)
            pending = app.secret_entry.pending(ctx.request_state or "")
            return await _outcome(name, responses[ENTRY_KEY], pending)
        url, token = app.secret_entry.request(name, hosts)
        overridden = _override_note(app.vault.env_overrides(name))
        caps = ctx.client_capabilities
        if caps is None or caps.elicitation is None or caps.elicitation.url is None:
            return SetSecretResult(
                name=name,
                reference=reference,
                status="pending",
                url=url,
                message="This client cannot open pages for the person. Ask the person to open "
                "this link on this machine and type the value there (valid once, for 10 "
                f"minutes); then call list_secrets to confirm.{overridden}",
            )
        params = ElicitRequestURLParams(
            message=f"Enter the value of {name} on this local page (it never reaches the "
            f"assistant).{overridden}",
            url=url,
            elicitation_id=token,
        )
        if _input_required_protocol(ctx):
            return InputRequiredResult(
                input_requests={ENTRY_KEY: ElicitRequest(params=params)}, request_state=token
            )
        answer = await ctx.elicit_url(params.message, url, token)
        outcome = await _outcome(name, answer, app.secret_entry.pending(token))
        if outcome.status in ("set", "overridden"):
            await ctx.session.send_elicit_complete(token)
        return outcome


def _override_note(variables: list[str]) -> str:
    if not variables:
        return ""
    return (
        f" Note: the server's environment variable {' and '.join(variables)} is set and takes "
        "precedence over a stored value until it is unset and the server restarted."
    )


def _checks(app: AppContext, infos: list[SecretInfo]) -> dict[str, CredentialCheck]:
    """The live checks of the set credentials that have one, side by side."""
    from concurrent.futures import ThreadPoolExecutor

    from mltrainer.tools.deploy.credentials import check_secret

    names = [info.name for info in infos if info.source != "unset"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        found = pool.map(lambda name: check_secret(name, app.vault, app.settings), names)
        return {name: check for name, check in zip(names, found, strict=True) if check}


def _input_required_protocol(ctx: AppCtx) -> bool:
    from mcp_types.version import is_version_at_least

    version = ctx.protocol_version
    return version is not None and is_version_at_least(version, "2026-07-28")


async def _outcome(name: str, answer: object, pending: Pending | None) -> SetSecretResult:
    reference = f"secret://{name}"
    if getattr(answer, "action", None) != "accept":
        return SetSecretResult(
            name=name, reference=reference, status="declined", message="The person declined."
        )
    if pending is None:
        return SetSecretResult(
            name=name,
            reference=reference,
            status="pending",
            message="The entry link expired. Call set_secret again for a new one.",
        )
    done = await anyio.to_thread.run_sync(pending.done.wait, ENTRY_WAIT_S)
    if not done:
        return SetSecretResult(
            name=name,
            reference=reference,
            status="pending",
            message="Not entered yet; the link stays valid for 10 minutes. Call list_secrets to check.",
        )
    stored = pending.stored
    assert stored is not None  # done is set only once the value is stored
    return SetSecretResult(
        name=name,
        reference=stored.reference,
        status="overridden" if stored.overridden_by else "set",
        hosts=stored.hosts,
        message=stored.message,
    )
