"""Using a trained model: the predict tool and the model card resource. Training it is
server/jobs.py; analysing it, server/analysis.py; publishing it, server/deploy.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from mcp.server import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from mltrainer.server.context import AppContext, AppCtx, app_context
from mltrainer.tools.training.predict import PredictResult, model_id_for
from mltrainer.tools.training.predict import predict as run_predict

DatasetArg = Annotated[
    str,
    Field(
        min_length=1,
        max_length=4096,
        description="A local CSV/Parquet path (under the allowed roots), a dataset_id from "
        "download_dataset, or a ref such as 'kaggle:owner/name', 'hf:owner/name', an https URL, "
        "'sql:secret://NAME#TABLE' or 'sql:secret://NAME?query=SELECT ...'.",
    ),
]


def register(mcp: MCPServer[AppContext]) -> None:
    @mcp.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, open_world_hint=False
        )
    )
    async def predict(
        model: Annotated[
            str,
            Field(
                min_length=1, max_length=64, description="A model_id, or a job_id (its best model)."
            ),
        ],
        dataset: DatasetArg,
        ctx: AppCtx,
        output: Annotated[
            str | None,
            Field(
                max_length=4096,
                description="Also write the predictions to a NEW database table, "
                "'sql:secret://NAME#TABLE' (an existing table is refused).",
            ),
        ] = None,
        threshold: Annotated[
            float | None,
            Field(
                gt=0,
                lt=1,
                description="Two-class models: predict the positive class from this probability "
                "on (default: the threshold chosen in training).",
            ),
        ] = None,
    ) -> PredictResult:
        """Predict with a trained model. Writes a CSV with one row per input row, in order:
        'prediction', and for classification 'proba_<class>' per class. Returns its path,
        the row count, a preview of the first rows, and warnings where the rows differ from
        the training data. With output='sql:secret://NAME#TABLE' the same columns, after a
        'row_number' column, also go into that new table."""
        app = app_context(ctx)

        def run() -> PredictResult:
            from mltrainer.tools.deep.serve import is_deep_model, predict_model

            record = app.store.get_model(model_id_for(model, app.store))
            if is_deep_model(record):  # image files or texts, not table rows
                found = predict_model(record, dataset, app.settings, app.store, app.vault, output)
                return PredictResult(**found.model_dump())
            return run_predict(
                model, dataset, app.settings, app.store, app.vault, output, threshold
            )

        return await app.run_blocking(run)

    @mcp.resource("mltrainer://models/{model_id}/card", mime_type="text/markdown")
    def model_card(model_id: str, ctx: AppCtx) -> str:
        """The model card (Hugging Face format) of a trained model: the one deploy_model
        uploads."""
        from mltrainer.tools.deploy.card import build_card
        from mltrainer.tools.training.finish import CARD_FILE

        folder = Path(app_context(ctx).store.get_model(model_id).path)
        written = folder / CARD_FILE
        return written.read_text("utf-8") if written.is_file() else str(build_card(folder))
