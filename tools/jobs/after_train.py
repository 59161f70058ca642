"""What a training job does once its final model is saved, wherever it trained (this machine,
Modal, a Kaggle kernel): log it to MLflow when tracking is on, then deploy it to the Hub when
the request asks (``deploy_to``). Each is a checkpointed stage, so a resumed job neither logs
nor deploys twice.

Tracking never ends a job: its failure is a warning in the result. A failed deployment fails
the job, and its error names the saved model (predict still works) and how to deploy it
again, so the caller never reads "succeeded" for a model that is not where it asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mltrainer.state.errors import InvalidInput, MLTrainerError
from mltrainer.tools.jobs.context import JobContext
from mltrainer.tools.training.outcome import Deployment, Tracking, TrainOutcome
from mltrainer.tools.training.request import TrainRequest


def after_training(ctx: JobContext, request: TrainRequest, outcome: TrainOutcome) -> TrainOutcome:
    """The outcome with tracking and deployment added."""
    if outcome.model_id is None:
        return outcome
    folder = ctx.settings.models_dir / outcome.model_id
    if ctx.settings.mlflow_tracking_uri:
        tracked = Tracking.model_validate(ctx.stage("track", lambda: track(ctx, folder)))
        outcome = outcome.model_copy(
            update={"tracking": tracked, "warnings": [*outcome.warnings, *tracked.warnings]}
        )
        ctx.store.update_job(ctx.job.id, result=outcome.model_dump(mode="json"))
    if request.deploy_to:
        deployed = Deployment.model_validate(
            ctx.stage("deploy", lambda: deploy(ctx, request, folder, outcome.model_id or ""))
        )
        outcome = outcome.model_copy(update={"deployment": deployed})
        ctx.store.update_job(ctx.job.id, result=outcome.model_dump(mode="json"))
    return outcome


def check_deploy(request: TrainRequest) -> None:
    """Refuse, before anything trains, a deploy stage that could never run."""
    from mltrainer.state.secrets import parse_reference
    from mltrainer.tools.deploy.hub import check_repo_id
    from mltrainer.tools.deploy.space import space_id_for

    if request.deploy_to is None:
        if request.deploy_space:
            raise InvalidInput(
                "deploy_space=true needs deploy_to, the model repository the Space serves.",
                next_step="Pass deploy_to='namespace/name' as well, or leave deploy_space out.",
            )
        return
    check_repo_id(request.deploy_to, "deploy_to")
    if request.deploy_space:
        check_repo_id(space_id_for(request.deploy_to), "the Space id derived from deploy_to")
    parse_reference(request.deploy_token)


def track(ctx: JobContext, folder: Path) -> dict[str, Any]:
    from mltrainer.tools.tracking.mlflow_run import log_job
    from mltrainer.tools.training.model import load_record

    # The model as saved (and, from a remote run, as checked when it came back).
    estimator = load_record(ctx.store.get_model(folder.name), ctx.store).estimator
    ctx.event("Logging the run to MLflow.")
    logged = log_job(folder, estimator, ctx.settings, ctx.store.masker)
    for warning in logged.job_warnings():
        ctx.event(warning, level="warning")
    if logged.status == "logged":
        ctx.event(f"Logged to MLflow: run {logged.run_id} ({logged.model_uri}).")
    tracked = Tracking(
        status=logged.status,
        tracking_uri=logged.tracking_uri,
        experiment=logged.experiment,
        run_id=logged.run_id,
        model_uri=logged.model_uri,
        warnings=logged.job_warnings(),
    )
    return tracked.model_dump(mode="json")


def deploy(ctx: JobContext, request: TrainRequest, folder: Path, model_id: str) -> dict[str, Any]:
    from mltrainer.tools.deploy.deploy import deploy as deploy_folder
    from mltrainer.tools.deploy.models import DeployOptions

    repo_id = request.deploy_to or ""
    ctx.event(f"Deploying {model_id} to the Hub as {repo_id}.")

    def progress(done: float, total: float | None, message: str) -> None:
        ctx.event(message)

    try:
        result = deploy_folder(
            folder,
            DeployOptions(
                repo_id=repo_id, private=request.deploy_private, space=request.deploy_space
            ),
            token_ref=request.deploy_token,
            settings=ctx.settings,
            vault=ctx.vault,
            masker=ctx.store.masker,
            store=ctx.store,
            progress=progress,
        )
    except MLTrainerError as exc:  # the same kind of error, saying what is kept and how on
        again = f"deploy_model(model='{model_id}', repo_id='{repo_id}')"
        exc.args = (
            f"Model {model_id} was trained and saved (predict uses it), but deploying it to "
            f"{repo_id} failed: {exc} Once that is fixed, deploy it with {again}; no need to "
            "train again.",
        )
        exc.next_step = f"Fix what the error names, then call {again}."
        raise
    ctx.event(
        f"Deployed to {result.repo_url}"
        + (f" and {result.space_url}." if result.space_url else ".")
    )
    deployed = Deployment(
        repo_id=result.repo_id,
        repo_url=result.repo_url,
        commit_sha=result.commit_sha,
        space_url=result.space_url,
        notes=result.notes,
    )
    return deployed.model_dump(mode="json")
