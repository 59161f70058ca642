"""From suggestions to the next training request: a pure function.

``next_request(request, suggestions)`` returns the request with the actionable suggestions
applied (at most one validation change per round), what changed and why, and what was left and
why. It takes any pydantic request with the fields it changes (``tools.training.request.
TrainRequest`` is the one meant) and validates the result with the request's own model, so this
package does not import the training package, which calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from mltrainer.tools.analysis.models import Suggestion

R = TypeVar("R", bound=BaseModel)
FieldValue = str | list[str] | None


class RequestView(BaseModel):
    """The request fields a suggestion may change."""

    model_config = ConfigDict(extra="ignore")

    task: str = "auto"
    validation: str = "auto"
    group_column: str | None = None
    time_column: str | None = None
    class_weight: str | None = None
    models: list[str] | None = None


class Change(BaseModel):
    action: str
    field: str
    value: FieldValue
    previous: FieldValue
    because: str


class Skipped(BaseModel):
    action: str
    reason: str


class NextRound(BaseModel, Generic[R]):
    request: R
    changes: list[Change]
    skipped: list[Skipped]

    @property
    def changed(self) -> bool:
        return bool(self.changes)


NOT_ACTIONABLE = {
    "missing_indicator": "the training request has no missing-indicator field yet (linear "
    "models get indicators already; tree models read missing values natively)",
    "more_data": "more labelled rows must come from a person",
}


def next_request(request: R, suggestions: Sequence[Suggestion]) -> NextRound[R]:
    current = RequestView.model_validate(request.model_dump())
    updates: dict[str, FieldValue] = {}
    changes: list[Change] = []
    skipped: list[Skipped] = []

    def change(action: str, field: str, value: FieldValue, because: str) -> None:
        previous = getattr(current, field)
        updates[field] = value
        changes.append(
            Change(action=action, field=field, value=value, previous=previous, because=because)
        )

    for suggestion in suggestions:
        reason = _why_not(suggestion, current, updates)
        if reason is not None:
            skipped.append(Skipped(action=suggestion.action, reason=reason))
            continue
        because = suggestion.evidence.summary
        if suggestion.action == "group_split":
            change("group_split", "validation", "group_kfold", because)
            change("group_split", "group_column", suggestion.column, because)
        elif suggestion.action == "time_split":
            change("time_split", "validation", "time_series", because)
            change("time_split", "time_column", suggestion.column, because)
        elif suggestion.action == "reweight":
            change("reweight", "class_weight", suggestion.class_weight, because)
        elif suggestion.action == "other_families":
            change("other_families", "models", list(suggestion.models), because)
    merged = {**request.model_dump(), **updates}
    return NextRound[R](
        request=type(request).model_validate(merged), changes=changes, skipped=skipped
    )


def _why_not(
    suggestion: Suggestion, current: RequestView, updates: dict[str, FieldValue]
) -> str | None:
    """Why a suggestion is not applied this round, or None to apply it."""
    if suggestion.action in NOT_ACTIONABLE:
        return NOT_ACTIONABLE[suggestion.action]
    if suggestion.action in ("group_split", "time_split"):
        if "validation" in updates:
            return "one validation change per round"
        if current.task == "forecast":
            return "a forecast is always validated in time order"
        wanted = "group_kfold" if suggestion.action == "group_split" else "time_series"
        column = current.group_column if suggestion.action == "group_split" else current.time_column
        if current.validation == wanted and column == suggestion.column:
            return "the request already does this"
    if suggestion.action == "reweight" and current.class_weight == suggestion.class_weight:
        return "the request already balances the classes"
    if (
        suggestion.action == "other_families"
        and current.models is not None
        and set(current.models) == set(suggestion.models)
    ):
        return "the request already allows these families"
    return None
