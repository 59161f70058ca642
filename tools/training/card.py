"""The model card: a Hugging Face README.md written beside each final model, and the card of
any saved model (the one written at training time, or a short one).

Kept in this one module so that it is easy to replace (the deployment work will build it with
huggingface_hub's ModelCard and a template).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from mltrainer.state.models import ModelRecord
from mltrainer.tools.training.results import AutoMLResult

CARD_FILE = "README.md"
PIPELINE_TAGS = {
    "binary": "tabular-classification",
    "multiclass": "tabular-classification",
    "regression": "tabular-regression",
    "forecast": "time-series-forecasting",
    "text_classification": "text-classification",
}


def card_for(model: ModelRecord) -> str:
    written = Path(model.path) / CARD_FILE
    if written.is_file():
        return written.read_text()
    score = f"{model.score:.4f}" if model.score is not None else "n/a"
    return (
        f"---\nlibrary_name: sklearn\ntags:\n- tabular-{model.task}\n- mltrainer\n---\n\n"
        f"# {model.id}\n\nA {model.task} model predicting `{model.target}` "
        f"from {len(model.features)} columns, trained by mltrainer (job {model.job_id}).\n\n"
        f"Validation {model.metric}: {score}\n"
    )


class LeaderboardRow(BaseModel):
    name: str
    cv_mean: float | None = None
    cv_std: float | None = None
    fit_time_s: float | None = None


class CardInfo(BaseModel):
    """What the model card tells; plain values, filled from whatever trained the model."""

    model_name: str = Field(min_length=1)
    task: str
    target: str | None = None
    metric: str
    greater_is_better: bool = True
    features: list[str] = Field(default_factory=list)
    classes: list[str] = Field(default_factory=list)
    positive_class: str | None = None
    cv_mean: float | None = None
    cv_std: float | None = None
    holdout: dict[str, float] = Field(default_factory=dict)
    leaderboard: list[LeaderboardRow] = Field(default_factory=list)
    feature_importance: list[tuple[str, float]] = Field(default_factory=list)
    decisions: list[str] = Field(default_factory=list)
    dropped_columns: dict[str, str] = Field(default_factory=dict)
    dataset_name: str = "local dataset"
    dataset_ref: str | None = None
    dataset_rows: int | None = None
    dataset_columns: int | None = None
    dataset_hash: str | None = None
    seed: int | None = None
    library_versions: dict[str, str] = Field(default_factory=dict)
    instructions: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def card_info_for_result(
    result: AutoMLResult,
    *,
    model_name: str,
    dataset_name: str = "local dataset",
    dataset_ref: str | None = None,
    dataset_rows: int | None = None,
    dataset_columns: int | None = None,
    dataset_hash: str | None = None,
    instructions: str | None = None,
) -> CardInfo:
    """A :class:`CardInfo` from the engine's result and what only the job knows (the data)."""
    return CardInfo(
        model_name=model_name,
        task=result.task,
        target=result.target,
        metric=result.metric,
        greater_is_better=result.greater_is_better,
        features=result.features,
        classes=result.classes,
        positive_class=result.positive_class,
        cv_mean=result.cv_mean,
        cv_std=result.cv_std,
        holdout=result.holdout,
        leaderboard=[
            LeaderboardRow(
                name=row.name, cv_mean=row.cv_mean, cv_std=row.cv_std, fit_time_s=row.fit_time_s
            )
            for row in result.leaderboard
        ],
        feature_importance=result.feature_importance,
        decisions=[f"{d.stage}: {d.decision} ({d.reason})" for d in result.decisions],
        dropped_columns={d.name: d.reason for d in result.dropped_columns},
        dataset_name=dataset_name,
        dataset_ref=dataset_ref,
        dataset_rows=dataset_rows,
        dataset_columns=dataset_columns,
        dataset_hash=dataset_hash,
        seed=result.seed,
        library_versions=result.library_versions,
        instructions=instructions,
    )


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _front_matter(info: CardInfo) -> str:
    from huggingface_hub import EvalResult, ModelCardData

    pipeline_tag = PIPELINE_TAGS.get(info.task)
    results = [
        EvalResult(
            task_type=pipeline_tag or info.task,
            task_name=(pipeline_tag or info.task).replace("-", " ").title(),
            dataset_type=info.dataset_ref or "local",
            dataset_name=info.dataset_name,
            dataset_split="holdout",
            metric_type=name,
            metric_value=round(float(value), 6),
            metric_name=f"{name} (holdout)",
        )
        for name, value in info.holdout.items()
    ]
    tags = ["mltrainer", "skops", "sklearn", info.task]
    if pipeline_tag:
        tags.insert(0, pipeline_tag)
    data = ModelCardData(
        library_name="sklearn",
        pipeline_tag=pipeline_tag,
        tags=list(dict.fromkeys(tags)),
        model_name=info.model_name,
        eval_results=results or None,
    )
    return data.to_yaml()


def model_card(info: CardInfo) -> str:
    """A Hugging Face model card: YAML front matter (library, tags, model-index), then sections."""
    lines = ["---", _front_matter(info), "---", "", f"# {info.model_name}", ""]
    what = {
        "binary": f"predicts whether `{info.target}` is `{info.positive_class or 'positive'}`",
        "multiclass": f"predicts `{info.target}` among {len(info.classes)} classes",
        "text_classification": f"classifies text into `{info.target}`",
        "regression": f"predicts the number `{info.target}`",
        "forecast": f"forecasts `{info.target}` ahead of the last known date",
        "clustering": "assigns rows to clusters (no target)",
    }.get(info.task, f"predicts `{info.target}`")
    lines += [
        f"A {info.task} model that {what} from {len(info.features)} input columns, trained "
        f"automatically by mltrainer on {info.created_at:%Y-%m-%d}.",
        "",
        "## Intended use",
        "",
        f"Predictions for new rows shaped like the training data ({info.dataset_name}): the same "
        "columns, the same meaning and units, drawn from the same population. It is a statistical "
        "model fitted to that dataset, not a source of truth: check it on your own data before "
        "relying on it, and do not use it for decisions about people without a human review.",
        "",
        "## Training data",
        "",
        f"- Dataset: {info.dataset_name}"
        + (f" (`{info.dataset_ref}`)" if info.dataset_ref else ""),
    ]
    if info.dataset_rows is not None:
        lines.append(f"- Rows: {info.dataset_rows}; columns: {info.dataset_columns or '–'}")
    if info.dataset_hash:
        lines.append(f"- Data hash: `{info.dataset_hash}`")
    if info.target:
        lines.append(f"- Target: `{info.target}`")
    if info.classes:
        lines.append("- Classes: " + ", ".join(f"`{c}`" for c in info.classes))
    lines.append("- Input columns: " + (", ".join(f"`{f}`" for f in info.features) or "–"))
    for column, reason in info.dropped_columns.items():
        lines.append(f"- Dropped `{column}`: {reason}")
    lines += ["", "## Evaluation", ""]
    direction = "higher" if info.greater_is_better else "lower"
    if info.cv_mean is not None:
        lines.append(
            f"Cross-validated {info.metric} ({direction} is better): {_fmt(info.cv_mean)}"
            f" ± {_fmt(info.cv_std)}."
        )
    if info.holdout:
        lines += ["", "Held-out test split, untouched during training:", ""]
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {name} | {_fmt(value)} |" for name, value in info.holdout.items()]
    if info.leaderboard:
        lines += ["", "Candidates tried (cross-validated):", ""]
        lines += ["| model | CV mean | CV std | fit time (s) |", "|---|---|---|---|"]
        lines += [
            f"| {row.name} | {_fmt(row.cv_mean)} | {_fmt(row.cv_std)} | {_fmt(row.fit_time_s)} |"
            for row in info.leaderboard[:20]
        ]
    if info.feature_importance:
        top = sorted(info.feature_importance, key=lambda item: item[1], reverse=True)[:10]
        lines += ["", "Most important features: " + ", ".join(f"`{n}` ({v:.3g})" for n, v in top)]
    if info.decisions:
        lines += ["", "### Decisions made while training", ""]
        lines += [f"- {decision}" for decision in info.decisions]
    if info.instructions:
        lines += ["", f"Instructions given for this training: {info.instructions}"]
    lines += [
        "",
        "## Limitations",
        "",
        "- Scores come from one dataset; rows unlike it (new categories, shifted ranges, another "
        "period) can be predicted badly without warning.",
        "- Missing or renamed input columns make prediction fail; extra columns are ignored.",
        "- The model reflects the biases of its training data.",
    ]
    if info.task in ("binary", "multiclass", "text_classification"):
        lines.append(
            "- Class probabilities are the model's estimates and may be miscalibrated; check them "
            "before using them as risks."
        )
    lines += [
        "",
        "## How to use",
        "",
        "The folder holds `model.skops` (the fitted scikit-learn pipeline, in the skops format: no "
        "pickle), `meta.json` (task, input columns, classes) and `predict.py`, which needs only "
        "pandas, scikit-learn, skops (and xgboost if the model uses it):",
        "",
        "```bash",
        "pip install pandas scikit-learn skops xgboost",
        "python predict.py input.csv predictions.csv   # or .parquet",
        "```",
        "",
        "It writes a `prediction` column"
        + (" and one `proba_<class>` column per class" if info.classes else "")
        + ", one row per input row, in order. Where mltrainer is installed, its `predict` tool "
        "does the same. Both load `model.skops` only if its sha256 is the one recorded when it "
        "was saved and every type it names is on mltrainer's list of what its models are made "
        "of; loading the file yourself with `skops.io.load(path, trusted=...)`, review the list "
        "that `skops.io.get_untrusted_types(file=path)` returns before trusting it.",
    ]
    if info.seed is not None or info.library_versions:
        lines += ["", "## Reproducibility", ""]
        if info.seed is not None:
            lines.append(f"- Seed: {info.seed}")
        lines += [f"- {name} {version}" for name, version in sorted(info.library_versions.items())]
    return "\n".join(lines) + "\n"
