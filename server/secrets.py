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
from mltrainer.state.secrets import SecretInfo
from mltrainer.tools.secret_entry import Pending

ENTRY_WAIT_S = 300
ENTRY_KEY = "secret_entry"


class SecretList(BaseModel):
    secrets: list[SecretInfo]
    store: str = Field(description="Where stored secrets live (a 0600 file).")
    how_to_set: str


class SetSecretResult(BaseModel):
    name: str
    reference: str
    status: Literal["set", "pending", "declined"]
    url: str | None = Field(
        default=None,
        description="One-time local page where the person types the value (when pending).",
    )
    message: str


def register(mcp: MCPServer[AppContext]) -> None:
    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    @tool_errors
    async def list_secrets(ctx: AppCtx) -> SecretList:
        """The secrets the server knows: name, reference to pass to tools (secret://NAME),
        where it comes from (environment or secrets file) and whether it is set. Never values."""
        app = app_context(ctx)
        return SecretList(
            secrets=app.vault.infos(),
            store=str(app.settings.secrets_path),
            how_to_set="Call set_secret(name) (the person types the value on a local page), run "
            "'mltrainer secrets set NAME' in a terminal, or set the environment variable.",
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
                description="e.g. HF_TOKEN, KAGGLE_USERNAME, KAGGLE_KEY, MODAL_TOKEN_ID.",
            ),
        ],
        ctx: AppCtx,
    ) -> SetSecretResult | InputRequiredResult:
        """Ask the person to enter a secret. Never pass the value: this opens a one-time local
        page (URL elicitation) where the person types it; the value is stored in the server's
        secrets file and is usable as secret://NAME. Waits for the person up to a few minutes."""
        app = app_context(ctx)
        reference = f"secret://{name}"
        responses = ctx.input_responses or {}
        if ENTRY_KEY in responses:  # the client came back after showing the page (2026-07-28)
            pending = app.secret_entry.pending(ctx.request_state or "")
            return await _outcome(name, responses[ENTRY_KEY], pending)
        caps = ctx.client_capabilities
        if caps is None or caps.elicitation is None or caps.elicitation.url is None:
            url, _ = app.secret_entry.request(name)
            return SetSecretResult(
                name=name,
                reference=reference,
                status="pending",
                url=url,
                message="This client cannot open pages for the person. Ask the person to open "
                "this link on this machine and type the value there (valid once, for 10 "
                "minutes); then call list_secrets to confirm.",
            )
        url, token = app.secret_entry.request(name)
        params = ElicitRequestURLParams(
            message=f"Enter the value of {name} on this local page (it never reaches the assistant).",
            url=url,
            elicitation_id=token,
        )
        if _input_required_protocol(ctx):
            return InputRequiredResult(
                input_requests={ENTRY_KEY: ElicitRequest(params=params)}, request_state=token
            )
        answer = await ctx.elicit_url(params.message, url, token)
        outcome = await _outcome(name, answer, app.secret_entry.pending(token))
        if outcome.status == "set":
            await ctx.session.send_elicit_complete(token)
        return outcome


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
    return SetSecretResult(
        name=name, reference=reference, status="set", message=f"Stored; pass {reference} to tools."
    )
