"""Turning the project's errors into MCP tool errors, in one place."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError

from mltrainer.state.errors import MLTrainerError

F = TypeVar("F", bound=Callable[..., Any])


def tool_errors(fn: F) -> F:
    """Re-raise an ``MLTrainerError`` as a ``ToolError`` so the caller reads its message.

    Any other exception is a bug: the SDK reports it as a generic tool failure and logs it.
    """
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except MLTrainerError as exc:
                raise ToolError(str(exc)) from exc

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MLTrainerError as exc:
            raise ToolError(str(exc)) from exc

    return wrapper  # type: ignore[return-value]
