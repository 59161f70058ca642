"""The CLI's commands for people: train, jobs, status, predict, profile, cancel, deploy.

Each one is an MCP client of the same server an assistant uses (client.py): the tools, their
checks and their messages are the server's. ``--json`` prints the tool's structured result on
standard output and nothing else; the exit code says how it went (client.py, EXIT_*).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrainer.server.cli.client import EXIT_FAILED, EXIT_OK, Server, connect, run

if TYPE_CHECKING:
    from rich.console import Console

# rich and the renderers are imported when a command runs: `mltrainer serve` (how MCP clients
# and tests start the server) builds this parser too, and must start fast.


def dataset(reference: str) -> str:
    """A local path as an absolute one (the server checks it against the allowed folders);
    dataset ids and kaggle:/hf:/https: references as they are."""
    path = Path(reference).expanduser()
    local = path.exists() or not any(
        reference.startswith(p) for p in ("ds_", "kaggle", "hf:", "https:", "http:")
    )
    return str(path.resolve()) if local else reference


def _console(args: argparse.Namespace) -> Console:
    from rich.console import Console

    # With --json, stdout holds the JSON alone: anything for people goes to stderr.
    return Console(stderr=bool(args.json))


def _emit(args: argparse.Namespace, data: dict[str, Any], show: str) -> None:
    from rich.console import Console

    from mltrainer.server.cli import render

    if args.json:
        render.print_json(data)
    else:
        getattr(render, show)(Console(), data)


def _ended(view: dict[str, Any]) -> int:
    return EXIT_OK if view["status"] == "succeeded" else EXIT_FAILED


async def _follow(server: Server, args: argparse.Namespace, job: dict[str, Any]) -> dict[str, Any]:
    from mltrainer.server.cli import render

    if args.json:
        return await server.follow(job)
    with render.progress_bar(_console(args), "training") as on_progress:
        return await server.follow(job, on_progress)


def train(args: argparse.Namespace) -> int:
    arguments: dict[str, Any] = {
        "dataset": dataset(args.data),
        "target": args.target,
        "task": args.task,
        "time_budget_s": args.budget,
        "wait_s": 0,
        "plots": False,
        "seed": args.seed,
    }
    if args.metric:
        arguments["metric"] = args.metric
    if args.models:
        arguments["models"] = [m.strip() for m in args.models.split(",") if m.strip()]

    async def command() -> int:
        async with connect() as server:
            job = await server.call("train_model", arguments)
            if not args.json:
                _console(args).print(
                    f"Job [bold]{job['job_id']}[/] started ({args.budget} s budget)."
                )
            if args.no_wait:
                _emit(args, job, "job")
                return EXIT_OK
            job = await _follow(server, args, job)
        _emit(args, job, "job")
        return _ended(job)

    return run(command)


def status(args: argparse.Namespace) -> int:
    async def command() -> int:
        async with connect() as server:
            job = await server.call("job_status", {"job_id": args.job, "plots": False})
            if args.wait:
                job = await _follow(server, args, job)
        _emit(args, job, "job")
        return EXIT_FAILED if job["status"] in ("failed", "cancelled") else EXIT_OK

    return run(command)


def jobs(args: argparse.Namespace) -> int:
    arguments: dict[str, Any] = {"limit": args.limit}
    if args.status:
        arguments["status"] = args.status
    if args.kind:
        arguments["kind"] = args.kind
    return _one_call("list_jobs", arguments, args, "jobs")


def predict(args: argparse.Namespace) -> int:
    arguments = {"model": args.model, "dataset": dataset(args.data)}
    return _one_call("predict", arguments, args, "predictions")


def profile(args: argparse.Namespace) -> int:
    arguments: dict[str, Any] = {"dataset": dataset(args.data), "plots": False}
    if args.target:
        arguments["target"] = args.target
    return _one_call("profile_dataset", arguments, args, "profile")


def cancel(args: argparse.Namespace) -> int:
    return _one_call("cancel_job", {"job_id": args.job}, args, "job")


def deploy(args: argparse.Namespace) -> int:
    arguments = {
        "model": args.model,
        "repo_id": args.repo,
        "token": args.token,
        "private": not args.public,
        "space": args.space,
        "dry_run": args.dry_run,
    }
    return _one_call("deploy_model", arguments, args, "deployed")


def _one_call(tool: str, arguments: dict[str, Any], args: argparse.Namespace, show: str) -> int:
    async def command() -> int:
        async with connect() as server:
            out = await server.call(tool, arguments)
        _emit(args, out, show)
        return EXIT_OK

    return run(command)


def add_commands(sub: Any) -> None:
    """The commands' arguments, on the ``mltrainer`` parser's subcommands."""

    def command(name: str, help: str, func: Any) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help, description=help)
        parser.add_argument(
            "--json", action="store_true", help="Print the result as JSON on stdout, only."
        )
        parser.set_defaults(func=func)
        return parser

    p = command("train", "Train a model on a dataset (a durable job) and show its metrics.", train)
    p.add_argument("data", help="A CSV/Parquet path, a dataset_id, or kaggle:/hf:/https: ref.")
    p.add_argument("--target", required=True, help="The column to predict.")
    p.add_argument("--task", default="auto", help="binary, multiclass, regression, forecast...")
    p.add_argument("--budget", type=int, default=60, help="Training seconds (default 60).")
    p.add_argument("--metric", help="e.g. roc_auc, accuracy, f1, r2, rmse (default: by task).")
    p.add_argument("--models", help="Only these families, comma-separated (e.g. xgboost,linear).")
    p.add_argument("--seed", type=int, default=0, help="Random seed (default 0).")
    p.add_argument(
        "--no-wait", action="store_true", help="Start the job and return; follow it with status."
    )

    p = command("status", "Show a job: progress, model, metrics, what to do next.", status)
    p.add_argument("job", help="A job_id (see 'mltrainer jobs').")
    p.add_argument(
        "--wait", action="store_true", help="Follow it with a progress bar until it ends."
    )

    p = command("jobs", "List jobs, newest first.", jobs)
    p.add_argument("--status", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    p.add_argument("--kind", choices=["train", "code"])
    p.add_argument("--limit", type=int, default=20, help="At most this many (default 20).")

    p = command("predict", "Predict with a model; writes a CSV and shows the first rows.", predict)
    p.add_argument("model", help="A model_id, or a job_id (its best model).")
    p.add_argument("data", help="The rows to predict: a path, dataset_id or reference.")

    p = command("profile", "Profile a dataset: columns, types, warnings, target.", profile)
    p.add_argument("data", help="A path, dataset_id or kaggle:/hf:/https: reference.")
    p.add_argument("--target", help="The column you mean to predict.")

    p = command("cancel", "Stop a queued or running job (a saved model stays usable).", cancel)
    p.add_argument("job", help="A job_id.")

    p = command("deploy", "Deploy a model to the Hugging Face Hub (one commit).", deploy)
    p.add_argument("model", help="A model_id, or the job_id of a succeeded job.")
    p.add_argument("repo", help="The model repository, 'namespace/name'.")
    p.add_argument(
        "--token", default="secret://HF_TOKEN", help="A secret reference, never a token."
    )
    p.add_argument("--public", action="store_true", help="Create public repositories.")
    p.add_argument("--space", action="store_true", help="Also deploy a Gradio Space.")
    p.add_argument("--dry-run", action="store_true", help="Build the files and card; send nothing.")
