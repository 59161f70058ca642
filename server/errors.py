"""Turning the project's errors into MCP errors, and refusing unknown arguments, in one place.

app.py applies these to every tool, resource and prompt as it is registered.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from mltrainer.state.errors import MLTrainerError

F = TypeVar("F", bound=Callable[..., Any])


def _translating(fn: F, to: Callable[[Exception], Exception | None]) -> F:
    """``fn``, raising ``to(exc)`` in place of an exception it maps (sync or async); ``to``
    returns None for one that passes as it is."""

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                mapped = to(exc)
                if mapped is None:
                    raise
                raise mapped from exc

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            mapped = to(exc)
            if mapped is None:
                raise
            raise mapped from exc

    return wrapper  # type: ignore[return-value]


def _for_tools(exc: Exception) -> Exception | None:
    if isinstance(exc, MLTrainerError):
        return ToolError(str(exc))
    if isinstance(exc, ToolError | MCPError):
        return None
    # A defect: the SDK logs it as a crash with its traceback; the caller learns what it was
    # (the type only: the exception's text may quote data or paths) and what to do next.
    return UnexpectedToolError(
        f"An internal error ({type(exc).__name__}) stopped this call. The server logged it and "
        "keeps serving. This is a defect of mltrainer-mcp, not of the "
        "request: report it with the server's log. Meanwhile check the arguments against the "
        "tool's description, or give the input in another form (e.g. a CSV copy of a table)."
    )


def tool_errors(fn: F) -> F:
    """Re-raise an ``MLTrainerError`` as a ``ToolError`` so the caller reads its message; any
    other exception (a bug) as an ``UnexpectedToolError`` that says so and what to do."""
    return _translating(fn, _for_tools)


def request_errors(fn: F) -> F:
    """For resources and prompts: an ``MLTrainerError`` (an unknown job, a bad id) is the
    protocol's invalid-params error carrying its message; the server logs no traceback."""
    return _translating(
        fn,
        lambda exc: (
            MCPError(code=INVALID_PARAMS, message=str(exc))
            if isinstance(exc, MLTrainerError)
            else None
        ),
    )


class StrictArguments(FuncMetadata):
    """A tool's argument handling that refuses names the tool does not take."""

    tool_name: str

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        valid = [field.alias or name for name, field in self.arg_model.model_fields.items()]
        unknown = sorted(set(arguments_to_validate) - set(valid))
        if unknown:
            names = ", ".join(repr(name) for name in unknown)
            takes = ", ".join(valid) or "no arguments"
            error = PydanticCustomError(
                "unknown_argument",
                "Unknown argument {names}: {tool} takes {takes}.",
                {"names": names, "tool": self.tool_name, "takes": takes},
            )
            raise ValidationError.from_exception_data(
                f"{self.tool_name} arguments",
                [{"type": error, "loc": (), "input": None}],
                hide_input=True,
            )
        return super().validate_arguments(arguments_to_validate)


def forbid_unknown_arguments(tool: Tool) -> None:
    """Make ``tool`` refuse arguments it does not take, naming the ones it does.

    Without this, pydantic drops unknown arguments silently: ``train_model(runtime="modal")``
    would start a local job as if the argument were not there. The input schema says
    ``additionalProperties: false``. (Checked before pydantic validates, rather than by
    rebuilding each argument model with ``extra="forbid"``, which costs start-up time.)
    """
    tool.fn_metadata = StrictArguments(
        **{name: getattr(tool.fn_metadata, name) for name in FuncMetadata.model_fields},
        tool_name=tool.name,
    )
    tool.parameters = {**tool.parameters, "additionalProperties": False}
