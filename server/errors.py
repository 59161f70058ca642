"""Turning the project's errors into MCP errors, and refusing unknown arguments, in one place.

app.py applies these to every tool, resource and prompt as it is registered.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS
from pydantic import ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from mltrainer.state.errors import MLTrainerError

F = TypeVar("F", bound=Callable[..., Any])


def _translating(fn: F, to: Callable[[MLTrainerError], Exception]) -> F:
    """``fn``, raising ``to(exc)`` in place of any ``MLTrainerError`` (sync or async)."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except MLTrainerError as exc:
                raise to(exc) from exc

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MLTrainerError as exc:
            raise to(exc) from exc

    return wrapper  # type: ignore[return-value]


def tool_errors(fn: F) -> F:
    """Re-raise an ``MLTrainerError`` as a ``ToolError`` so the caller reads its message.

    Any other exception is a bug: the SDK reports it as a generic tool failure and logs it.
    """
    return _translating(fn, lambda exc: ToolError(str(exc)))


def request_errors(fn: F) -> F:
    """For resources and prompts: an ``MLTrainerError`` (an unknown job, a bad id) is the
    protocol's invalid-params error carrying its message; the server logs no traceback."""
    return _translating(fn, lambda exc: MCPError(code=INVALID_PARAMS, message=str(exc)))


def forbid_unknown_arguments(tool: Tool) -> None:
    """Make ``tool`` refuse arguments it does not take, naming the ones it does.

    Without this, pydantic drops unknown arguments silently: ``train_model(runtime="modal")``
    would start a local job as if the argument were not there. The input schema then says
    ``additionalProperties: false``. Errors no longer echo the caller's values either.
    """
    base = tool.fn_metadata.arg_model
    valid = sorted(field.alias or name for name, field in base.model_fields.items())
    takes = ", ".join(valid) if valid else "no arguments"

    class Strict(base):  # type: ignore[valid-type,misc]
        model_config = ConfigDict(
            extra="forbid", hide_input_in_errors=True, title=f"{tool.name} arguments"
        )

        @model_validator(mode="before")
        @classmethod
        def _known(cls, data: Any) -> Any:
            unknown = sorted(set(data) - set(valid)) if isinstance(data, dict) else []
            if unknown:
                names = ", ".join(repr(name) for name in unknown)
                raise PydanticCustomError(
                    "unknown_argument",
                    "Unknown argument {names}: {tool} takes {takes}.",
                    {"names": names, "tool": tool.name, "takes": takes},
                )
            return data

    Strict.__name__ = base.__name__
    tool.fn_metadata.arg_model = Strict
    tool.parameters = Strict.model_json_schema(by_alias=True)
