"""Turns benchmark records into the markdown tables of ``results.md``."""

from __future__ import annotations

import statistics
from typing import Any

from bench.automl.scoring import PRIMARY, TIE_TOLERANCE, compare

Record = dict[str, Any]

METRIC_LABEL = {"roc_auc": "ROC AUC", "accuracy": "accuracy", "r2": "R²"}


def _index(records: list[Record]) -> dict[tuple[str, str], Record]:
    return {(r["dataset"], r["contestant"]): r for r in records}


def _primary(record: Record | None) -> float | None:
    if record is None or record.get("status") != "ok":
        return None
    return float(record["scores"][PRIMARY[record["task"]]])


def _score_cell(record: Record | None) -> str:
    if record is None:
        return "–"
    if record.get("status") != "ok":
        return str(record.get("status"))
    scores = record["scores"]
    primary = f"{scores[PRIMARY[record['task']]]:.4f}"
    if record["task"] == "regression":
        return f"{primary} (RMSE {scores['rmse']:.4g})"
    return f"{primary} (ll {scores['log_loss']:.3f})"


def _resource_cell(record: Record | None) -> str:
    if record is None:
        return "–"
    fit = record.get("fit_s")
    fit_text = f"{fit:.1f} s" if isinstance(fit, int | float) else "–"
    return f"{fit_text} · {record.get('peak_mb', 0):.0f} MB"


def _duel(ours: Record | None, other: Record | None) -> str | None:
    a, b = _primary(ours), _primary(other)
    if a is None or b is None:
        return None
    return compare(a, b)


def render(meta: dict[str, Any], records: list[Record]) -> str:
    contestants: list[str] = meta["contestants"]
    datasets: list[str] = meta["datasets"]
    by_key = _index(records)
    tasks = {r["dataset"]: r["task"] for r in records}
    lines = [
        "# AutoML benchmark",
        "",
        f"Budget {meta['budget_s']} s per AutoML contestant, seed {meta['seed']}, "
        f"{meta['cpus']} CPUs, run {meta['started']}.",
        "",
        f"Command: `{meta['command']}`",
        "",
        "Test-set scores (primary metric, higher is better; log loss or RMSE in brackets). "
        "Primary: ROC AUC for binary, accuracy for multiclass, R² for regression.",
        "",
        "| dataset | task | " + " | ".join(contestants) + " |",
        "|---|---|" + "---|" * len(contestants),
    ]
    for name in datasets:
        cells = [_score_cell(by_key.get((name, c))) for c in contestants]
        best = max(
            (s for c in contestants if (s := _primary(by_key.get((name, c)))) is not None),
            default=None,
        )
        for i, c in enumerate(contestants):
            score = _primary(by_key.get((name, c)))
            if best is not None and score is not None and best - score <= TIE_TOLERANCE:
                cells[i] = f"**{cells[i]}**"
        task = tasks.get(name, "?")
        lines.append(f"| {name} | {task} | " + " | ".join(cells) + " |")

    lines += [
        "",
        "Fit + predict time and peak memory (RSS high-water mark of the contestant's process tree).",
        "",
        "| dataset | " + " | ".join(contestants) + " |",
        "|---|" + "---|" * len(contestants),
    ]
    for name in datasets:
        cells = [_resource_cell(by_key.get((name, c))) for c in contestants]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    loads = [r["load_avg_1m"] for r in records if "load_avg_1m" in r]
    if loads:
        lines += [
            "",
            f"Machine load (1-minute average at the end of each run): {min(loads):.1f}–"
            f"{max(loads):.1f} on {meta['cpus']} CPUs; above {meta['cpus']} means the contestants "
            "shared the CPUs with other work.",
        ]
    lines += ["", "## Summary", "", *_summary(contestants, datasets, by_key, meta)]
    problems = [r for r in records if r.get("status") not in ("ok", None)]
    if problems:
        lines += ["", "## Runs that did not finish", ""]
        for r in problems:
            lines.append(
                f"- {r['contestant']} on {r['dataset']}: {r['status']} — {r.get('message', '')}"
            )
    return "\n".join(lines) + "\n"


def _summary(
    contestants: list[str],
    datasets: list[str],
    by_key: dict[tuple[str, str], Record],
    meta: dict[str, Any],
) -> list[str]:
    ran = [
        c for c in contestants if any(_primary(by_key.get((d, c))) is not None for d in datasets)
    ]
    complete = [d for d in datasets if all(_primary(by_key.get((d, c))) is not None for c in ran)]
    lines = [f"Mean primary score over the {len(complete)} datasets every contestant finished:", ""]
    for c in ran:
        scores = [_primary(by_key[(d, c)]) for d in complete]
        mean = statistics.fmean(s for s in scores if s is not None) if complete else float("nan")
        lines.append(f"- {c}: {mean:.4f}")
    if "ours" not in contestants:
        return lines
    lines += ["", f"Ours against each (win / tie / loss; tie = within {TIE_TOLERANCE}):", ""]
    for other in contestants:
        if other == "ours":
            continue
        outcomes = [_duel(by_key.get((d, "ours")), by_key.get((d, other))) for d in datasets]
        counted = [o for o in outcomes if o is not None]
        wins, ties = counted.count("win"), counted.count("tie")
        lines.append(
            f"- vs {other}: {wins} / {ties} / {counted.count('loss')} "
            f"(win or tie on {wins + ties} of {len(counted)})"
        )
    if "flaml" in contestants:
        ratios = [
            by_key[(d, "ours")]["peak_mb"] / by_key[(d, "flaml")]["peak_mb"]
            for d in datasets
            if _primary(by_key.get((d, "ours"))) is not None
            and _primary(by_key.get((d, "flaml"))) is not None
        ]
        if ratios:
            lines += [
                "",
                f"Peak memory ours / FLAML: median {statistics.median(ratios):.2f}, "
                f"max {max(ratios):.2f} over {len(ratios)} datasets.",
            ]
    budget = meta["budget_s"]
    fits = [
        r["fit_s"]
        for d in datasets
        if (r := by_key.get((d, "ours"))) is not None and r.get("status") == "ok"
    ]
    if fits:
        within = sum(f <= budget * 1.1 for f in fits)
        lines += [
            "",
            f"Ours finished within the budget + 10% ({budget * 1.1:.0f} s, fit + predict) on "
            f"{within} of {len(fits)} datasets (longest {max(fits):.1f} s).",
        ]
    return lines
