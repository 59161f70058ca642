"""The masker applied at the MCP edge: every result, error and log line leaving the server."""

from __future__ import annotations

import logging
from typing import Any

from mcp.server.context import CallNext, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from mltrainer.state.masking import Masker

MASKED_METHODS = frozenset({"tools/call", "resources/read", "prompts/get"})


async def mask_results(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> Any:
    """Server middleware: mask tool results (content, structured content, errors) and
    resource contents with the live masker of the lifespan context."""
    masker: Masker | None = getattr(ctx.lifespan_context, "masker", None)
    if masker is None or ctx.method not in MASKED_METHODS:
        return await call_next(ctx)
    try:
        result = await call_next(ctx)
    except MCPError as exc:
        exc.error.message = masker.mask(exc.error.message)
        raise
    if isinstance(result, BaseModel):
        dumped = result.model_dump(by_alias=True, exclude_unset=True)
        return type(result).model_validate(masker.mask_obj(dumped))
    return masker.mask_obj(result)


class MaskingFilter(logging.Filter):
    """Masks a log record's final message before any handler writes it."""

    def __init__(self, masker: Masker) -> None:
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.masker.mask(record.getMessage())
        record.args = None
        if record.exc_text:
            record.exc_text = self.masker.mask(record.exc_text)
        return True


def mask_logs(masker: Masker) -> None:
    """Attach the masking filter to every handler of the root logger (once each)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter(masker))
