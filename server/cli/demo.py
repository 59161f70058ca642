"""``mltrainer demo``: the project's main job, end to end, offline.

It starts the MCP server over stdio exactly as an MCP client would, trains on the breast
cancer dataset that ships with scikit-learn, shows progress, and predicts.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from mltrainer.state.settings import Settings

console = Console(stderr=False)


def write_demo_data(folder: Path) -> tuple[Path, Path]:
    from sklearn.datasets import load_breast_cancer

    folder.mkdir(parents=True, exist_ok=True)
    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    train, new = frame.iloc[:-10], frame.iloc[-10:].drop(columns=["target"])
    train_path, new_path = folder / "breast_cancer.csv", folder / "breast_cancer_new.csv"
    train.to_csv(train_path, index=False)
    new.to_csv(new_path, index=False)
    return train_path, new_path


async def _run(time_budget_s: int) -> int:
    from mltrainer.server.cli import render
    from mltrainer.server.cli.client import connect

    settings = Settings()
    # Under datasets/: the only part of the state directory that tools may read.
    train_path, new_path = write_demo_data(settings.datasets_dir / "demo")
    console.print(f"[bold]mltrainer demo[/] — state in {settings.home}")
    console.print(f"Dataset: {train_path} (scikit-learn's breast cancer, {time_budget_s}s budget)")
    async with connect(settings) as server:
        tools = await server.client.list_tools()
        console.print(f"Connected over stdio: {len(tools.tools)} tools.")
        with render.progress_bar(console, "training") as on_progress:
            arguments = {
                "dataset": str(train_path),
                "target": "target",
                "time_budget_s": time_budget_s,
                "wait_s": 45,  # then job_status: no call waits past 50 s
            }
            job = await server.follow(
                await server.call("train_model", arguments, on_progress), on_progress
            )
        if job["status"] != "succeeded":
            console.print(f"[red]Training {job['status']}:[/] {job.get('error')}")
            return 1
        holdout = (job.get("result") or {}).get("holdout", {}).get(job["metric"])
        tested = (
            f"; on held-out test rows: [bold green]{holdout:.4f}[/]" if holdout is not None else ""
        )
        console.print(
            f"Model [bold]{job['model_id']}[/]: validation {job['metric']} = "
            f"[bold green]{job['score']:.4f}[/]{tested}"
        )
        out = await server.call("predict", {"model": job["model_id"], "dataset": str(new_path)})
    render.predictions(console, out, "new rows")
    return 0


def run_demo(time_budget_s: int = 20) -> int:
    from mltrainer.server.cli.client import run

    return run(lambda: _run(time_budget_s))
