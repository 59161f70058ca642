"""How the CLI shows results to a person: rich tables and a progress bar. (``--json`` bypasses
all of it: the tool's structured result, as JSON, on standard output.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mltrainer.server.cli.client import Progress as ProgressCallback

STATUS_STYLE = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "running": "cyan"}


def print_json(data: Any) -> None:
    """For scripts: plain JSON on stdout, never coloured or wrapped."""
    print(json.dumps(data, indent=2, ensure_ascii=False))


@contextmanager
def progress_bar(console: Console, description: str) -> Iterator[ProgressCallback]:
    """A bar that follows the server's progress notifications; yields the callback."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(description, total=1.0)

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            bar.update(task, completed=progress, description=(message or description)[:60])

        yield on_progress
        bar.update(task, completed=1.0)


def value(cell: Any) -> str:
    if isinstance(cell, float):
        return f"{cell:.4f}"
    return "" if cell is None else str(cell)


def status(text: str) -> str:
    return f"[{STATUS_STYLE.get(text, 'white')}]{text}[/]"


def job(console: Console, view: dict[str, Any]) -> None:
    """A job's state, and once it has ended its metrics and leaderboard."""
    console.print(f"Job [bold]{view['job_id']}[/] ({view['kind']}): {status(view['status'])}")
    if view.get("model_id"):
        score = f", validation {view['metric']} = [bold]{value(view['score'])}[/]"
        console.print(f"Model [bold]{view['model_id']}[/]{score if view.get('score') else ''}")
    if view["status"] in ("queued", "running"):
        console.print(f"{view['progress']:.0%}: {view['message']}")
    if view.get("error"):
        console.print(f"[red]Error:[/] {view['error']}")
    result = view.get("result") or {}
    if result.get("holdout"):
        table = Table(title="Held-out test metrics")
        for name in result["holdout"]:
            table.add_column(name, justify="right")
        table.add_row(*(value(v) for v in result["holdout"].values()))
        console.print(table)
    if result.get("leaderboard"):
        table = Table(title=f"Leaderboard (best of {len(result['leaderboard'])})")
        for column in ("candidate", f"cv {view.get('metric') or ''}", "± std", "fit s", "weight"):
            table.add_column(column, justify="left" if column == "candidate" else "right")
        for entry in result["leaderboard"][:5]:
            table.add_row(
                entry["name"],
                value(entry["cv_mean"]),
                value(entry["cv_std"]),
                f"{entry['fit_time_s']:.1f}",
                f"{entry['weight']:.2f}" if entry.get("weight") else "",
            )
        console.print(table)
    console.print(f"[dim]Next: {next_command(view)}[/]")


def next_command(view: dict[str, Any]) -> str:
    """The job's next step, said as the command a person types."""
    if view["status"] in ("queued", "running"):
        return f"mltrainer status {view['job_id']} --wait (or mltrainer cancel {view['job_id']})"
    if view["status"] == "succeeded" and view.get("model_id"):
        return f"mltrainer predict {view['model_id']} DATA"
    return str(view["next_step"])


def jobs(console: Console, listed: dict[str, Any]) -> None:
    table = Table(title=f"{listed['count']} job(s), newest first")
    for column in ("job", "kind", "status", "progress", "model", "score", "created"):
        table.add_column(column)
    for view in listed["jobs"]:
        table.add_row(
            view["job_id"],
            view["kind"],
            status(view["status"]),
            f"{view['progress']:.0%}",
            view.get("model_id") or "",
            value(view.get("score")),
            view["created_at"][:19].replace("T", " "),
        )
    console.print(table)


def predictions(console: Console, out: dict[str, Any], rows: str = "rows") -> None:
    table = Table(title=f"Predictions for {out['n_rows']} {rows} (first {len(out['preview'])})")
    for column in out["columns"]:
        table.add_column(column)
    for row in out["preview"]:
        table.add_row(*(value(row.get(column)) for column in out["columns"]))
    console.print(table)
    console.print(f"All predictions: {out['predictions_path']}")


def profile(console: Console, found: dict[str, Any]) -> None:
    console.print(
        f"[bold]{found['path']}[/]: {found['n_rows']:,} rows × {found['n_columns']} columns"
        + (f" (statistics from {found['sample_rows']:,} sampled rows)" if found["sampled"] else "")
    )
    flagged = {w["column"]: w["kind"] for w in found["warnings"] if w.get("column")}
    table = Table(title="Columns")
    for column in ("column", "kind", "missing", "distinct", "warning"):
        table.add_column(column)
    for column in found["columns"]:
        table.add_row(
            column["name"],
            column["kind"],
            f"{column['missing_ratio']:.1%}",
            str(column["cardinality"]),
            flagged.get(column["name"], ""),
        )
    console.print(table)
    target = found.get("target")
    if target:
        console.print(f"Target [bold]{target['column']}[/]: {target['task']} ({target['reason']})")
    for warning in found["warnings"]:
        style = {"high": "red", "medium": "yellow"}.get(warning["severity"], "dim")
        console.print(f"[{style}]{warning['kind']}[/]: {warning['message']}")


def deployed(console: Console, out: dict[str, Any]) -> None:
    if out["dry_run"]:
        console.print(
            f"Dry run: nothing sent. {len(out['files'])} files would go to {out['repo_id']}."
        )
    else:
        made = "a new commit" if out["committed"] else "no change (same files)"
        console.print(f"Deployed to {out['repo_url']}: {made} {out.get('commit_sha') or ''}")
    if out.get("space_url"):
        console.print(f"Space: {out['space_url']}")
    for note in out.get("notes", []):
        console.print(f"[dim]{note}[/]")
