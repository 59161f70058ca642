"""The model card (README.md): Hub metadata built with ``ModelCardData``, the text rendered from
``templates/model_card.md`` with ``ModelCard.from_template`` (Jinja2).

Built from the model folder's files only, so training can write the same card that deployment
uploads. Everything taken from the data (column names, class labels, reasons) is escaped for
Markdown before it reaches the template; the YAML is written by ``huggingface_hub`` itself.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrainer.tools.deploy.dataset_ref import DataOrigin, data_origin
from mltrainer.tools.deploy.folder import ModelFolder, read_folder

if TYPE_CHECKING:
    from huggingface_hub import ModelCard

CARD_FILE = "README.md"
TEMPLATE = "model_card.md"
LEADERBOARD_ROWS = 5
CUSTOM_MODULE = "mltrainer.tools.training.engine.custom"
PIPELINE_TAGS = {
    "binary": "tabular-classification",
    "multiclass": "tabular-classification",
    "regression": "tabular-regression",
    "forecast": "time-series-forecasting",
    "text_classification": "text-classification",
}
LOWER_IS_BETTER = re.compile(r"(loss|error|rmse|mae|mse|mape|deviance)", re.I)
_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


TEMPLATES = Path(__file__).resolve().parent / "templates"  # package data


def build_card(
    folder: Path | ModelFolder, *, repo_id: str | None = None, dataset_ref: str | None = None
) -> ModelCard:
    """The model card of a saved model.

    ``repo_id`` adds a download line to the usage section; ``dataset_ref`` names where the
    data came from when the manifest does not say (e.g. a cached download's reference).
    """
    from huggingface_hub import ModelCard

    model = folder if isinstance(folder, ModelFolder) else read_folder(folder)
    origin = data_origin(dataset_ref or model.manifest.data.ref or model.manifest.data.path)
    return ModelCard.from_template(
        card_data(model, origin),
        template_path=str(TEMPLATES / TEMPLATE),
        **_text(model, origin, repo_id),
    )


def card_data(model: ModelFolder, origin: DataOrigin) -> Any:
    from huggingface_hub import EvalResult, ModelCardData

    meta, metrics = model.meta, model.metrics
    pipeline_tag = PIPELINE_TAGS.get(meta.task)
    task_type = pipeline_tag or meta.task
    dataset_type = origin.hub_dataset or origin.kind
    results = [
        EvalResult(
            task_type=task_type,
            task_name=task_type.replace("-", " ").capitalize(),
            dataset_type=dataset_type,
            dataset_name=origin.display,
            dataset_split="holdout",
            metric_type=name,
            metric_name=f"{name} (held out)",
            metric_value=float(value),
        )
        for name, value in metrics.holdout.items()
        if math.isfinite(value)  # the Hub's metadata has no NaN
    ]
    tags = [pipeline_tag, "tabular", "sklearn", "skops", "mltrainer", meta.task]
    return ModelCardData(
        library_name="sklearn",
        pipeline_tag=pipeline_tag,
        tags=list(dict.fromkeys(tag for tag in tags if tag)),
        datasets=[origin.hub_dataset] if origin.hub_dataset else None,
        license=model.manifest.license,
        model_name=meta.model_id,
        eval_results=results or None,
    )


def _text(model: ModelFolder, origin: DataOrigin, repo_id: str | None) -> dict[str, Any]:
    meta, metrics, manifest, plan = model.meta, model.metrics, model.manifest, model.plan
    instructions = str(manifest.request.get("instructions") or "").strip()
    trusted = sorted(t for t in meta.trusted_types if _TYPE_NAME.fullmatch(t))
    greater = plan.greater_is_better and not LOWER_IS_BETTER.search(metrics.metric)
    return {
        "title": f"{meta.model_id}: {_what(meta.task, code(meta.target) if meta.target else None)}",
        "summary": _summary(model),
        "task": meta.task,
        "target": code(meta.target) if meta.target else None,
        "classes": [code(c) for c in meta.classes or []],
        "positive_class": code(meta.positive_class) if meta.positive_class else None,
        "features": [code(f) for f in meta.features],
        "estimator": code(meta.name),
        "trained_on": (meta.created_at or "")[:10] or None,
        "instructions": plain(instructions[:500]) if instructions else None,
        "data_source": plain(origin.display),
        "data_rows": manifest.data.rows,
        "data_hash": manifest.data.sha256,
        "seed": manifest.seed,
        "holdout": [{"name": plain(k), "value": fmt(v)} for k, v in metrics.holdout.items()],
        "metric": plain(metrics.metric),
        "direction": "higher is better" if greater else "lower is better",
        "cv_mean": fmt(metrics.cv_mean) if metrics.cv_mean is not None else None,
        "cv_std": fmt(metrics.cv_std) if metrics.cv_std is not None else None,
        "leaderboard": _leaderboard(model, greater),
        "dropped": [{"name": code(d.name), "reason": plain(d.reason)} for d in plan.dropped],
        "decisions": [plain(f"{d.stage}: {d.decision} ({d.reason})") for d in plan.decisions],
        "limitations": _limitations(model),
        "repo_id": repo_id,
        "custom_module": CUSTOM_MODULE if any(CUSTOM_MODULE in t for t in trusted) else None,
        "trusted_types": trusted,
        "library_versions": [
            f"{plain(name)} {plain(version)}"
            for name, version in sorted(model.library_versions.items())
        ],
    }


def _what(task: str, target: str | None) -> str:
    name = target or "the target"
    return {
        "binary": f"predicts {name} (yes or no)",
        "multiclass": f"predicts the class of {name}",
        "text_classification": f"classifies text into {name}",
        "regression": f"predicts the number {name}",
        "forecast": f"forecasts {name}",
        "clustering": "groups rows into clusters",
    }.get(task, f"predicts {name}")


def _summary(model: ModelFolder) -> str:
    meta, metrics = model.meta, model.metrics
    held = metrics.holdout.get(metrics.metric)
    score = f" Its held-out {plain(metrics.metric)} is {fmt(held)}." if held is not None else ""
    return (
        f"A {meta.task} model that {_what(meta.task, code(meta.target) if meta.target else None)}"
        f" from {len(meta.features)} input column(s) of tabular data, found by an automated "
        f"search over model families.{score}"
    )


def _leaderboard(model: ModelFolder, greater: bool) -> list[dict[str, str]]:
    scored = [row for row in model.leaderboard if row.cv_mean is not None]
    scored.sort(key=lambda row: row.cv_mean or 0.0, reverse=greater)
    return [
        {
            "name": plain(row.name),
            "cv_mean": fmt(row.cv_mean),
            "cv_std": fmt(row.cv_std),
            "fit_time": fmt(row.fit_time_s),
        }
        for row in scored[:LEADERBOARD_ROWS]
    ]


def _limitations(model: ModelFolder) -> list[str]:
    meta, manifest = model.meta, model.manifest
    lines = [
        "Scores come from one dataset; rows unlike it (new categories, shifted ranges, another "
        "period) can be predicted badly without any warning.",
        "Missing or renamed input columns make prediction fail; extra columns are ignored.",
        "The model reflects the biases of its training data.",
    ]
    rows = manifest.data.rows
    if rows is not None and rows < 1000:
        lines.append(f"Trained on {rows} rows only: the scores above are uncertain.")
    if meta.task in ("binary", "multiclass", "text_classification"):
        lines.append(
            "Class probabilities are the model's estimates and may be miscalibrated; check them "
            "before using them as risks."
        )
    if meta.task == "forecast":
        lines.append("Forecasts grow less reliable the further they reach past the last date.")
    if manifest.search_stopped == "time":
        lines.append(
            "The search was stopped by its time budget, so training again may pick another model."
        )
    return lines


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def plain(text: str) -> str:
    """Text from the data or a person, made inert in Markdown: one line, no markup or HTML."""
    one_line = " ".join(str(text).split())
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", one_line)


def code(text: str) -> str:
    """Inline code that survives backticks in ``text`` (Markdown's longer-fence rule)."""
    one_line = " ".join(str(text).split()).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", one_line)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest else ""
    return f"{fence}{pad}{one_line}{pad}{fence}"
