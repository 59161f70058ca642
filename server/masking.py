"""The masker applied at the MCP edge: every result, error and log line leaving the server."""

from __future__ import annotations

import json
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
        return type(result).model_validate(_mask_result(masker, dumped))
    return _mask_result(masker, result)


def _mask_result(masker: Masker, result: object) -> object:
    """Mask keys and values everywhere; a text item holding JSON stays valid JSON."""
    return masker.mask_obj(_mask_texts(masker, result))


def _mask_texts(masker: Masker, node: object) -> object:
    if isinstance(node, dict):
        return {
            key: mask_json_text(masker, value)
            if key == "text" and isinstance(value, str)
            else _mask_texts(masker, value)
            for key, value in node.items()
        }
    if isinstance(node, list | tuple):
        return type(node)(_mask_texts(masker, item) for item in node)
    return node


def mask_json_text(masker: Masker, text: str) -> str:
    """Mask ``text``; when it is JSON, mask inside the parsed document, so a secret that
    spans JSON syntax can never turn the text into something that does not parse."""
    masked = masker.mask(text)
    if masked == text or text[:1] not in ("{", "["):
        return masked
    try:
        document = json.loads(text)
    except ValueError:
        return masked
    try:
        json.loads(masked)
        return masked
    except ValueError:
        return json.dumps(masker.mask_obj(document), indent=2, ensure_ascii=False)


class MaskingFilter(logging.Filter):
    """Masks a log record before any handler writes it: its message, its traceback and its
    stack. The traceback is formatted and masked here, since a formatter would fill it in
    only after every filter ran (and handlers such as rich's read ``exc_info`` directly)."""

    def __init__(self, masker: Masker) -> None:
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.masker.mask(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.masker.mask(record.exc_text)
        record.exc_info = None
        if record.stack_info:
            record.stack_info = self.masker.mask(record.stack_info)
        return True


def mask_logs(masker: Masker) -> None:
    """Attach the masking filter to every handler that exists: the root logger's, every named
    logger's (uvicorn's among them) and the last-resort handler (once each)."""
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    handlers = {handler for logger in loggers for handler in logger.handlers}
    if logging.lastResort is not None:
        handlers.add(logging.lastResort)
    for handler in handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter(masker))
