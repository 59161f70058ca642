"""``train_model(iterate=N)``: up to N follow-up rounds that act on the error analysis.

Each round analyses the current model's held-out rows (tools/analysis), turns the suggestions
the planner can act on itself (re-weighting, a group or time split, other families) into the
next request (``next_request``), trains it, and keeps it only when its held-out score is
better. A round that finds nothing to act on ends the rounds. Every round, kept or not, and
why, is in the result's ``rounds`` and ``decisions``.

The same seed and validation hold out the same rows, so a round that changes the weights or the
families is compared on the very rows the first model was scored on; a round that changes the
validation holds out other rows, and its decision says so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mltrainer.state.errors import MLTrainerError
from mltrainer.tools.jobs.context import JobContext
from mltrainer.tools.training.outcome import Round, TrainOutcome
from mltrainer.tools.training.plan import Decision
from mltrainer.tools.training.request import TrainRequest

FitRound = Callable[[TrainRequest, int], TrainOutcome]  # the next request, the round -> outcome


def iterate(
    ctx: JobContext, request: TrainRequest, outcome: TrainOutcome, fit_round: FitRound
) -> TrainOutcome:
    """The best outcome after up to ``request.iterate`` rounds; ``fit_round`` trains one
    request without making its models the job's (until this function keeps one)."""
    current = request
    for number in range(1, request.iterate + 1):
        if outcome.model_id is None or outcome.score is None:
            break
        ctx.check_cancelled()
        ctx.event(f"Round {number}: analysing where model {outcome.model_id} errs.")
        planned = _next(ctx, current, outcome.model_id)
        if planned is None:
            outcome = _record(ctx, outcome, Round(round=number, changes=[], why=_NOTHING))
            break
        changed, changes, skipped = planned
        ctx.event(f"Round {number}: training again with {'; '.join(changes)}.")
        candidate = fit_round(changed, number)
        kept, why = _compare(outcome, candidate, validation_changed=_validation(current, changed))
        entry = Round(
            round=number,
            changes=changes,
            skipped=skipped,
            model_id=candidate.model_id,
            score=candidate.score,
            kept=kept,
            why=why,
        )
        ctx.event(f"Round {number}: {why}")
        if kept:
            carried = {"rounds": outcome.rounds, "decisions": [*outcome.decisions]}
            outcome, current = candidate.model_copy(update=carried), changed
        outcome = _record(ctx, outcome, entry)
    return outcome


_NOTHING = "the analysis suggested nothing the planner can act on itself; rounds ended"


def _next(
    ctx: JobContext, request: TrainRequest, model_id: str
) -> tuple[TrainRequest, list[str], list[str]] | None:
    from mltrainer.tools.analysis import analyze, model_facts, read_holdout
    from mltrainer.tools.analysis.iterate import next_request
    from mltrainer.tools.training.engine.families import FAMILIES

    folder = Path(ctx.store.get_model(model_id).path)
    facts = model_facts(folder)
    try:
        rows = read_holdout(folder, facts)
        analysis = analyze(rows, facts, ctx.store.masker, available_families=FAMILIES)
    except MLTrainerError as exc:  # no held-out rows to analyse (clustering): nothing to act on
        ctx.event(f"No error analysis, so no round: {exc}", level="warning")
        return None
    planned = next_request(request, analysis.suggestions)
    skipped = [f"{s.action}: {s.reason}" for s in planned.skipped]
    if not planned.changed:
        return None
    changes = [f"{c.field}={c.value!r} ({c.action}: {c.because})" for c in planned.changes]
    return planned.request, changes, skipped


def _validation(before: TrainRequest, after: TrainRequest) -> bool:
    return (before.validation, before.group_column, before.time_column) != (
        after.validation,
        after.group_column,
        after.time_column,
    )


def _compare(
    best: TrainOutcome, candidate: TrainOutcome, *, validation_changed: bool
) -> tuple[bool, str]:
    from mltrainer.tools.training.engine.metrics import greater_is_better

    metric = best.metric or ""
    if candidate.score is None or best.score is None:
        return False, "no held-out score to compare; the earlier model stays"
    better = (
        candidate.score > best.score if greater_is_better(metric) else candidate.score < best.score
    )
    numbers = f"held-out {metric} {candidate.score:.4f} against {best.score:.4f}"
    rows = " (the validation changed, so other rows were held out)" if validation_changed else ""
    if better:
        return True, f"kept: {numbers}{rows}"
    return False, f"not kept: {numbers}{rows}; model {best.model_id} stays"


def _record(ctx: JobContext, outcome: TrainOutcome, entry: Round) -> TrainOutcome:
    what = "; ".join(entry.changes) or "no change"
    decision = Decision(stage="iterate", decision=f"round {entry.round}: {what}", reason=entry.why)
    outcome = outcome.model_copy(
        update={"rounds": [*outcome.rounds, entry], "decisions": [*outcome.decisions, decision]}
    )
    ctx.store.update_job(ctx.job.id, result=outcome.model_dump(mode="json"))
    return outcome
