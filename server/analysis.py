"""The analyze_model tool: where a trained model fails, and what to change next."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from mcp.server import MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from mltrainer.server.context import AppContext, AppCtx, app_context
from mltrainer.server.errors import tool_errors
from mltrainer.server.images import tool_result
from mltrainer.state.errors import InvalidInput
from mltrainer.tools.analysis.models import ModelAnalysis

MAX_IMAGES = 4
ColumnName = Annotated[str, Field(min_length=1, max_length=512)]


def run_analysis(
    app: AppContext,
    model: str,
    dataset: str | None,
    target: str | None,
    sensitive_columns: list[str],
) -> ModelAnalysis:
    """Load the model and its rows, analyse, and record the analysis and plots as artifacts."""
    # Imported here: pandas, numpy and the engine are not needed to list the tools.
    from mltrainer.state.models import ArtifactRecord
    from mltrainer.state.store import new_id
    from mltrainer.tools.analysis import (
        analyze,
        check_analysable,
        dataset_rows,
        model_facts,
        read_holdout,
    )
    from mltrainer.tools.analysis.service import ANALYSIS_FILE
    from mltrainer.tools.datasets.cache import sha256_file
    from mltrainer.tools.datasets.table import resolve_table
    from mltrainer.tools.profiling import read_table
    from mltrainer.tools.training.engine.families import FAMILIES
    from mltrainer.tools.training.model import load_record
    from mltrainer.tools.training.predict import model_id_for

    record = app.store.get_model(model_id_for(model, app.store))
    folder = Path(record.path)
    facts = model_facts(folder)
    check_analysable(facts, target)
    notes = []
    if dataset is None:
        if target is not None and target != facts.target:
            raise InvalidInput(
                f"target='{target}' applies to a dataset given with dataset=; the held-out rows "
                f"hold the model's own target '{facts.target}'.",
                next_step="Leave target out, or pass dataset= as well.",
            )
        rows = read_holdout(folder, facts)
    else:
        path = resolve_table(dataset, app.store, app.settings, app.vault)
        rows = dataset_rows(load_record(record, app.store), read_table(path), facts, target)
        if facts.data_sha256 is not None and sha256_file(path) == facts.data_sha256:
            notes.append(
                "This dataset is the one the model was trained on: its errors here are "
                "optimistic. Analyse without dataset= (the held-out rows), or on rows kept aside."
            )
    out_dir = folder / "analysis" / new_id("an")
    analysis = analyze(
        rows,
        facts,
        app.masker,
        sensitive_columns=sensitive_columns,
        available_families=FAMILIES,
        out_dir=out_dir,
        notes=notes,
    )
    written = [(out_dir / ANALYSIS_FILE, "analysis", "application/json")]
    written += [(Path(plot.path), "analysis_plot", "image/png") for plot in analysis.plots]
    for path, kind, media in written:
        app.store.add_artifact(
            ArtifactRecord(
                id=new_id("art"),
                job_id=record.job_id,
                model_id=record.id,
                kind=kind,
                path=str(path),
                media_type=media,
                bytes=path.stat().st_size,
            )
        )
    return analysis


def register(mcp: MCPServer[AppContext]) -> None:
    @mcp.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, open_world_hint=True
        )
    )
    @tool_errors
    async def analyze_model(
        model: Annotated[
            str,
            Field(
                min_length=1, max_length=64, description="A model_id, or a job_id (its best model)."
            ),
        ],
        ctx: AppCtx,
        dataset: Annotated[
            str | None,
            Field(
                min_length=1,
                max_length=4096,
                description="A labelled dataset to analyse on (path, dataset_id or ref). Omit to "
                "use the rows the training job held out.",
            ),
        ] = None,
        target: Annotated[
            str | None,
            Field(
                max_length=512,
                description="With dataset=: the column holding the true values, if not named "
                "like the model's target.",
            ),
        ] = None,
        sensitive_columns: Annotated[
            list[ColumnName] | None,
            Field(
                max_length=1000,
                description="Columns whose values must never be shown: rows are listed without "
                "them and they are sliced only by missingness.",
            ),
        ] = None,
        plots: Annotated[bool, Field(description="Attach the plots (PNG).")] = True,
    ) -> Annotated[CallToolResult, ModelAnalysis]:
        """Where a trained model fails and why, on the rows its job held out (or on a labelled
        dataset): the slices (a category value, a numeric range, missing values) where its error
        is highest relative to overall, with sizes and a significance check corrected for the
        slices tested; per-class precision/recall, costliest confusions, calibration and the
        most confidently wrong rows (classification); largest errors, heteroscedasticity and
        bias at the target's extremes (regression); error by horizon step and series
        (forecasts); plots; and typed suggestions (e.g. group_split, reweight, other_families),
        each pointing at its evidence, that a next train_model call can act on."""
        app = app_context(ctx)
        analysis = await app.run_blocking(
            lambda: run_analysis(app, model, dataset, target, sensitive_columns or [])
        )
        images = [Path(plot.path) for plot in analysis.plots[:MAX_IMAGES]] if plots else []
        return tool_result(analysis, images)
