"""``analyze``: labelled rows and their predictions in, a typed ``ModelAnalysis`` out.

The caller brings the rows (the job's held-out rows, ``read_holdout``, or a labelled dataset,
``dataset_rows``) and the model's facts (``model_facts``); with ``out_dir`` the plots and the
analysis itself are written there (masked, private) and listed in ``plots``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mltrainer.state.files import write_bytes, write_text
from mltrainer.state.masking import Masker
from mltrainer.tools.analysis import plots
from mltrainer.tools.analysis.classification import classification_detail
from mltrainer.tools.analysis.facts import ModelFacts
from mltrainer.tools.analysis.models import Measure, ModelAnalysis, PlotRef
from mltrainer.tools.analysis.regression import forecast_detail, regression_detail, residuals
from mltrainer.tools.analysis.rows import EvaluatedRows, check_analysable
from mltrainer.tools.analysis.slices import ALPHA, SliceReport, find_slices, min_slice_rows
from mltrainer.tools.analysis.suggest import suggest

ANALYSIS_FILE = "analysis.json"


def analyze(
    rows: EvaluatedRows,
    facts: ModelFacts,
    masker: Masker,
    *,
    sensitive_columns: Sequence[str] = (),
    available_families: Sequence[str] = (),
    out_dir: Path | None = None,
    notes: Sequence[str] = (),
) -> ModelAnalysis:
    """Where the model errs on ``rows``: slices, details by task, suggestions, plots.

    ``sensitive_columns`` (matched without regard to case) never show a value: rows are listed
    without them and they are sliced only by missingness. ``available_families`` are the model
    families a next round may allow (for the ``other_families`` suggestion).
    """
    check_analysable(facts)
    assert facts.target is not None
    hidden, unmatched = _hidden(sensitive_columns, rows, facts.target)
    classification = facts.classification
    residual = None if classification else residuals(rows)
    if classification:
        errors = (rows.actual.to_numpy() != rows.predicted.to_numpy()).astype(float)
    else:
        assert residual is not None
        errors = np.abs(residual)
    measure: Measure = "error_rate" if classification else "mean_abs_error"
    found = SliceReport(slices=[], tested=0, min_rows=min_slice_rows(len(rows)))
    if facts.task != "forecast":  # forecasts are read by series and horizon instead
        found = find_slices(rows.frame, errors, measure, facts.column_kinds, hidden, residual)
    analysis = ModelAnalysis(
        model_id=facts.model_id,
        task=facts.task,
        target=facts.target,
        source=rows.source,
        rows=len(rows),
        measure=measure,
        overall=float(np.mean(errors)),
        slices=found.slices,
        slices_tested=found.tested,
        min_slice_rows=found.min_rows,
        alpha=ALPHA,
        classification=classification_detail(rows, facts, hidden) if classification else None,
        regression=regression_detail(rows, facts, hidden) if facts.task == "regression" else None,
        forecast=forecast_detail(rows, _series_name(rows)) if facts.task == "forecast" else None,
        sensitive_columns=sorted(hidden),
        notes=[*rows.notes, *notes, *unmatched],
    )
    analysis.suggestions = suggest(analysis, facts, rows, available_families)
    if out_dir is not None:
        analysis.plots = _write_plots(analysis, rows, residual, masker, out_dir)
        write_text(out_dir / ANALYSIS_FILE, analysis.model_dump_json(indent=2), masker)
    return analysis


def _hidden(
    sensitive: Sequence[str], rows: EvaluatedRows, target: str
) -> tuple[set[str], list[str]]:
    """The columns to hide (any case of a name given), and a note on names matching none."""
    wanted = {name.lower() for name in sensitive}
    present = [str(c) for c in rows.frame.columns] + [target]
    hidden = {c for c in present if c.lower() in wanted}
    unmatched = sorted(wanted - {c.lower() for c in hidden})
    note = (
        [f"sensitive_columns not among the analysed columns: {', '.join(unmatched)}."]
        if unmatched
        else []
    )
    return hidden, note


def _series_name(rows: EvaluatedRows) -> str | None:
    return str(rows.series.name) if rows.series is not None and rows.series.name else None


def _write_plots(
    analysis: ModelAnalysis,
    rows: EvaluatedRows,
    residual: np.ndarray | None,
    masker: Masker,
    out_dir: Path,
) -> list[PlotRef]:
    """The plots worth drawing for this analysis, most telling first."""
    drawings: list[tuple[str, str, Callable[[], bytes]]] = []
    if analysis.slices:
        drawings.append(
            (
                "slices",
                "Where the model errs most",
                lambda: plots.slices_png(
                    analysis.slices, analysis.overall, analysis.measure, masker
                ),
            )
        )
    if analysis.classification is not None:
        detail = analysis.classification
        if detail.calibration is not None:
            calibration = detail.calibration
            drawings.append(
                ("calibration", "Calibration", lambda: plots.calibration_png(calibration, masker))
            )
        drawings.append(
            (
                "per_class",
                "Precision and recall per class",
                lambda: plots.per_class_png(detail.per_class, masker),
            )
        )
    predicted = rows.predicted.to_numpy(dtype=float) if residual is not None else None
    if analysis.regression is not None and residual is not None and predicted is not None:
        extremes = analysis.regression.extremes
        actual = rows.actual.to_numpy(dtype=float)
        drawings.append(
            (
                "residuals",
                "Errors by prediction",
                lambda: plots.residuals_png(predicted, residual, masker),
            )
        )
        drawings.append(
            (
                "extremes",
                "The target's extremes",
                lambda: plots.extremes_png(actual, predicted, extremes, masker),
            )
        )
    if analysis.forecast is not None:
        forecast = analysis.forecast
        if forecast.by_horizon:
            drawings.append(
                (
                    "horizon",
                    "Error by horizon step",
                    lambda: plots.horizon_png(forecast.by_horizon, masker),
                )
            )
        if len(forecast.by_series) > 1:
            drawings.append(
                ("series", "Error by series", lambda: plots.series_png(forecast.by_series, masker))
            )
    out = []
    for name, title, draw in drawings:
        path = write_bytes(out_dir / f"{name}.png", draw())
        out.append(PlotRef(name=name, title=title, path=str(path)))
    return out
