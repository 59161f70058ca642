"""Concrete suggestions from an analysis, each pointing at its evidence.

The rules are few and conservative: only significant slices count as evidence, and a change
the model's plan already made (a group split, balanced classes, a family tried) is not
suggested again.
"""

from __future__ import annotations

from collections.abc import Sequence

from mltrainer.tools.analysis.facts import ModelFacts
from mltrainer.tools.analysis.models import (
    Evidence,
    GroupSplit,
    MissingIndicator,
    ModelAnalysis,
    MoreData,
    OtherFamilies,
    Reweight,
    Slice,
    Suggestion,
    TimeSplit,
)
from mltrainer.tools.analysis.rows import EvaluatedRows
from mltrainer.tools.analysis.slices import infer_kind

GROUP_MIN_VALUES = 10  # a column with this many repeated values looks like an entity id
MORE_DATA_LIFT = 1.5
MAX_MORE_DATA = 2
RECALL_GAP = 0.1
MINORITY_SHARE = 0.5  # of the largest class's support


def suggest(
    analysis: ModelAnalysis,
    facts: ModelFacts,
    rows: EvaluatedRows,
    available_families: Sequence[str] = (),
) -> list[Suggestion]:
    found: list[Suggestion] = []
    for i, piece in enumerate(analysis.slices):
        if piece.significant:
            found.extend(_from_slice(piece, f"slices[{i}]", facts, rows, found))
    reweight = _reweight(analysis, facts)
    if reweight is not None:
        found.append(reweight)
    families = _other_families(analysis, facts, available_families)
    if families is not None:
        found.append(families)
    return found


def _from_slice(
    piece: Slice, ref: str, facts: ModelFacts, rows: EvaluatedRows, found: list[Suggestion]
) -> list[Suggestion]:
    shown = (
        f"{piece.description}: {_measure(piece.error, piece.measure)} vs "
        f"{_measure(piece.error_outside, piece.measure)} elsewhere ({piece.rows} rows, "
        f"adjusted p = {piece.p_adjusted:.2g})"
    )
    evidence = Evidence(summary=shown, ref=ref)
    column = piece.columns[0]
    done = {(s.action, getattr(s, "column", None)) for s in found}
    out: list[Suggestion] = []
    if piece.kind == "missing" and ("missing_indicator", column) not in done:
        out.append(MissingIndicator(column=column, evidence=evidence))
    if (
        piece.kind == "category"
        and ("group_split", column) not in done
        and _looks_like_groups(column, facts, rows)
    ):
        out.append(GroupSplit(column=column, evidence=evidence))
    if (
        piece.kind == "range"
        and ("time_split", column) not in done
        and _is_latest_dates(piece, column, facts, rows)
    ):
        out.append(TimeSplit(column=column, evidence=evidence))
    more = sum(1 for s in found if s.action == "more_data")
    if (
        piece.kind in ("category", "range")
        and piece.lift >= MORE_DATA_LIFT
        and more < MAX_MORE_DATA
    ):
        out.append(MoreData(slice=piece.description, rows=piece.rows, evidence=evidence))
    return out


def _measure(value: float, measure: str) -> str:
    return f"error rate {value:.1%}" if measure == "error_rate" else f"mean |error| {value:.4g}"


def _looks_like_groups(column: str, facts: ModelFacts, rows: EvaluatedRows) -> bool:
    """Many values, each on several rows (an entity id), and validation not already by group."""
    if facts.task == "forecast" or facts.validation == "group_kfold":
        return False
    if column not in rows.frame.columns:
        return False
    values = rows.frame[column].dropna()
    distinct = values.nunique()
    return distinct >= GROUP_MIN_VALUES and len(values) >= 2 * distinct


def _is_latest_dates(piece: Slice, column: str, facts: ModelFacts, rows: EvaluatedRows) -> bool:
    """The latest date bin errs most: the model may be validated on the past it learned from."""
    if facts.task == "forecast" or facts.validation == "time_series":
        return False
    if column not in rows.frame.columns or piece.high is None:
        return False
    kind = facts.column_kinds.get(column) or infer_kind(rows.frame[column])
    if kind != "datetime":
        return False
    import pandas as pd

    latest = pd.to_datetime(rows.frame[column], errors="coerce", format="mixed").max()
    return str(latest.date()) == str(piece.high)


def _reweight(analysis: ModelAnalysis, facts: ModelFacts) -> Reweight | None:
    detail = analysis.classification
    if detail is None or facts.class_weight == "balanced" or len(detail.per_class) < 2:
        return None
    largest = max(s.support for s in detail.per_class)
    majority = [s for s in detail.per_class if s.support >= MINORITY_SHARE * largest]
    minority = [s for s in detail.per_class if s.support < MINORITY_SHARE * largest]
    if not minority:
        return None
    majority_recall = sum(s.recall for s in majority) / len(majority)
    lagging = [s for s in minority if s.recall < majority_recall - RECALL_GAP]
    if not lagging:
        return None
    shown = ", ".join(f"{s.label} {s.recall:.0%} (n={s.support})" for s in lagging)
    return Reweight(
        classes=[s.label for s in lagging],
        evidence=Evidence(
            summary=f"recall of the rarer class(es) {shown} vs {majority_recall:.0%} on average "
            "for the frequent ones",
            ref="classification.per_class",
        ),
    )


def _other_families(
    analysis: ModelAnalysis, facts: ModelFacts, available: Sequence[str]
) -> OtherFamilies | None:
    """Systematic errors, and families the plan left out: allow them next."""
    untried = [f for f in available if f not in facts.families]
    if facts.task == "forecast" or not untried:  # forecasts have two families, both tried
        return None
    evidence = _systematic(analysis)
    if evidence is None:
        return None
    return OtherFamilies(models=[*facts.families, *untried], evidence=evidence)


def _systematic(analysis: ModelAnalysis) -> Evidence | None:
    if analysis.regression is not None:
        hetero = analysis.regression.heteroscedasticity
        biased = [e for e in analysis.regression.extremes if e.verdict != "unbiased"]
        if biased:
            shown = "; ".join(f"{e.side} tenth {e.verdict.replace('_', ' ')}" for e in biased)
            return Evidence(summary=f"the target's extremes: {shown}", ref="regression.extremes")
        if hetero is not None and hetero.detected:
            return Evidence(
                summary=f"errors grow with the prediction (Spearman rho {hetero.spearman_rho:.2f})",
                ref="regression.heteroscedasticity",
            )
    flagged = [i for i, s in enumerate(analysis.slices) if s.significant]
    if flagged:
        top = analysis.slices[flagged[0]]
        return Evidence(
            summary=f"{len(flagged)} significant slice(s), worst {top.description} "
            f"(lift {top.lift:.2f})",
            ref=f"slices[{flagged[0]}]",
        )
    return None
