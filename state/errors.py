"""The project's exception hierarchy.

Every error carries a message written for the caller (often a language model): it says what
went wrong and what to do next. The MCP layer turns these into tool errors verbatim.
"""

from __future__ import annotations


class MLTrainerError(Exception):
    """Base class: a failure the caller can act on."""

    def __init__(self, message: str, *, next_step: str | None = None) -> None:
        self.next_step = next_step
        super().__init__(f"{message} {next_step}".strip() if next_step else message)


class InvalidInput(MLTrainerError):
    """An argument is malformed, out of range or inconsistent with the data."""


class NotFound(MLTrainerError):
    """A job, model, dataset, file or session that does not exist."""


class DatasetError(InvalidInput):
    """A dataset that cannot be read: empty, binary, ragged, wrong encoding, too big."""


class SecretError(MLTrainerError):
    """A malformed, unknown or unset secret reference."""


class PermissionDenied(MLTrainerError):
    """The configuration does not allow this (a path outside the roots, network, remote bind)."""


class RemoteServiceError(MLTrainerError):
    """Kaggle, the Hugging Face Hub, Modal or a URL answered with an error."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        next_step: str | None = None,
    ) -> None:
        self.status = status
        self.request_id = request_id
        detail = message
        if status is not None:
            detail += f" (HTTP {status}"
            detail += f", request id {request_id})" if request_id else ")"
        super().__init__(detail, next_step=next_step)


class SandboxUnavailable(MLTrainerError):
    """No isolating sandbox backend can run on this machine."""


class JobStateError(MLTrainerError):
    """A job is not in a state that allows the operation (e.g. predicting from a failed job)."""


class UntrustedModel(MLTrainerError):
    """A model file that changed since it was saved, or names types models are not made of."""


class InternalError(MLTrainerError):
    """An invariant of the project's own code does not hold: a bug, not the caller's input."""
