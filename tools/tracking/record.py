"""What a finished job's MLflow run holds, read from the model folder and masked.

Pure: nothing here imports MLflow. The request and the plan become parameters, the CV and
held-out scores metrics, the task, dataset hash and model id tags; the metadata, plan, metrics,
manifest, model card and predict.py are text artifacts (masked), the plots binary ones (checked
for secrets before upload), the leaderboard a table. The held-out rows are not sent: they are
the person's data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mltrainer.state.errors import InvalidInput
from mltrainer.state.masking import Masker
from mltrainer.state.settings import Settings

MAX_PARAM_CHARS = 6000  # MLflow's limit on a parameter's value
TEXT_FILES = ("meta.json", "metrics.json", "plan.json", "manifest.json", "README.md", "predict.py")
PLAN_FIELDS = (
    "task",
    "metric",
    "greater_is_better",
    "positive_class",
    "classes",
    "n_rows",
    "class_weight",
    "time_column",
    "horizon",
    "max_search_rows",
    "seed",
)
_UNSAFE_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")


class ModelFiles(BaseModel):
    """What logging the model needs from ``meta.json``."""

    model_id: str
    job_id: str | None = None
    task: str
    name: str = "model"
    trusted_types: list[str] = Field(default_factory=list)


class RunContent(BaseModel):
    experiment: str
    run_name: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    leaderboard: list[dict[str, str | float]]
    text_files: list[str]
    binary_files: list[str]
    model: ModelFiles


def run_content(folder: Path, settings: Settings, masker: Masker) -> RunContent:
    meta = _json(folder / "meta.json")
    if not meta:
        raise InvalidInput(f"{folder} holds no model metadata (meta.json).")
    plan = _json(folder / "plan.json")
    metrics = _json(folder / "metrics.json")
    manifest = _json(folder / "manifest.json")
    model = ModelFiles.model_validate(meta)
    data = manifest.get("data") or {}
    dataset = str(data.get("path") or (manifest.get("request") or {}).get("dataset") or "")
    tags = {
        "mltrainer.task": model.task,
        "mltrainer.model_id": model.model_id,
        "mltrainer.job_id": str(model.job_id or manifest.get("job_id") or ""),
        "mltrainer.dataset_sha256": str(data.get("sha256") or ""),
        "mltrainer.target": str(meta.get("target") or ""),
        "mltrainer.metric": str(meta.get("metric") or ""),
        "mltrainer.model_name": model.name,
        "mltrainer.search_stopped": str(manifest.get("search_stopped") or ""),
    }
    return RunContent(
        experiment=masker.mask(settings.mlflow_experiment or experiment_for(dataset, settings)),
        run_name=masker.mask(f"{model.name} {model.model_id}"),
        params={
            _key(k): _value(v, masker)
            for k, v in {**_request_params(manifest), **_plan_params(plan, data)}.items()
        },
        metrics=_metrics(metrics),
        tags={k: masker.mask(v) for k, v in tags.items() if v},
        leaderboard=_leaderboard(folder, masker),
        text_files=[name for name in TEXT_FILES if (folder / name).is_file()],
        binary_files=sorted(p.name for p in folder.glob("*.png")),
        model=model,
    )


def experiment_for(dataset: str, settings: Settings) -> str:
    """One experiment per dataset: its folder in the cache and file name, or its file name."""
    path = Path(dataset)
    try:
        shown = path.relative_to(settings.datasets_dir).as_posix()
    except ValueError:
        shown = path.name
    return f"mltrainer/{shown or 'dataset'}"


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


def _request_params(manifest: dict[str, Any]) -> dict[str, Any]:
    request = manifest.get("request") or {}
    return {f"request.{name}": value for name, value in request.items()}


def _plan_params(plan: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    validation = plan.get("validation") or {}
    time = plan.get("time") or {}
    out: dict[str, Any] = {f"plan.{name}": plan.get(name) for name in PLAN_FIELDS}
    out.update({f"plan.validation.{k}": v for k, v in validation.items()})
    out["plan.families"] = [f.get("name") for f in plan.get("families") or []]
    out["plan.features"] = [c.get("name") for c in plan.get("columns") or []]
    out["plan.dropped"] = [d.get("name") for d in plan.get("dropped") or []]
    out["plan.time_budget_s"] = time.get("total_s")
    out["data.rows"] = data.get("rows")
    return out


def _metrics(metrics: dict[str, Any]) -> dict[str, float]:
    name = str(metrics.get("metric") or "score")
    out = {f"cv_{name}": metrics.get("cv_mean"), f"cv_{name}_std": metrics.get("cv_std")}
    out.update({f"holdout_{k}": v for k, v in (metrics.get("holdout") or {}).items()})
    return {
        _key(k): float(v)
        for k, v in out.items()
        if isinstance(v, int | float) and v == v and abs(v) != float("inf")
    }


def _leaderboard(folder: Path, masker: Masker) -> list[dict[str, str | float]]:
    path = folder / "leaderboard.json"
    entries = json.loads(path.read_text()) if path.is_file() else []
    rows: list[dict[str, str | float]] = []
    for entry in entries if isinstance(entries, list) else []:
        rows.append(
            {
                key: value if isinstance(value, int | float) else _value(value, masker)
                for key, value in entry.items()
            }
        )
    return rows


def _key(name: str) -> str:
    return _UNSAFE_KEY.sub("_", name)[:250]


def _value(value: Any, masker: Masker) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = masker.mask(text)
    return text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 1] + "…"
