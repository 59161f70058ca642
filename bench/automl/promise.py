"""The tables for issue #17's targets, from the same records as ``results.md``.

``served`` is our engine through ``train_model`` (see ``bench.automl.served``); the peer is
FLAML, usually at a longer budget (``--budget-of served=15 --budget-of flaml=60``).

- Quality: each dataset's primary test score, ours / FLAML's (the normalised score; target:
  mean of ours ≥ FLAML's mean, no dataset under 0.97).
- Budget: call → final model (loading, profiling, refit included) against budget + 10 %.
- Memory: the peak of server + worker together (sampled every 0.1 s), beside FLAML's process.
- First usable model: call → the first ``model_id`` (the anytime baseline; target ≤ 10 s).
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.automl.scoring import PRIMARY

Record = dict[str, Any]
FLOOR = 0.97  # no dataset below this fraction of the peer's score


def _primary(record: Record | None) -> float | None:
    if record is None or record.get("status") != "ok":
        return None
    return float(record["scores"][PRIMARY[record["task"]]])


def _f(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _quality(datasets: list[str], by: dict[tuple[str, str], Record], peer: str) -> list[str]:
    lines = [
        f"| dataset | task | rows (train) | ours | {peer} | ours / {peer} | xgboost defaults |",
        "|---|---|---|---|---|---|---|",
    ]
    ratios, ours_all, peer_all = [], [], []
    for name in datasets:
        ours, other = by.get((name, "served")), by.get((name, peer))
        a, b = _primary(ours), _primary(other)
        ratio = a / b if a is not None and b not in (None, 0.0) else None
        if ratio is not None:
            ratios.append((ratio, name))
            ours_all.append(a)
            peer_all.append(b)
        task = (ours or other or {}).get("task", "?")
        rows = (ours or other or {}).get("n_train", "?")
        mark = " ✗" if ratio is not None and ratio < FLOOR else ""
        xgb = _primary(by.get((name, "xgboost")))
        lines.append(
            f"| {name} | {task} | {rows} | {_f(a)} | {_f(b)} | {_f(ratio, 3)}{mark} | {_f(xgb)} |"
        )
    if ratios:
        worst, where = min(ratios)
        lines += [
            f"| **mean** | | | **{statistics.mean(ours_all):.4f}** | "
            f"**{statistics.mean(peer_all):.4f}** | "
            f"{statistics.mean(r for r, _ in ratios):.3f} (lowest {worst:.3f}, {where}) | |",
        ]
    return lines


def _resources(datasets: list[str], by: dict[tuple[str, str], Record], peer: str) -> list[str]:
    lines = [
        "| dataset | budget | call → final model | over budget | first model | "
        f"server + worker peak (server / worker) | {peer} peak | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in datasets:
        ours, other = by.get((name, "served")), by.get((name, peer))
        if ours is None or ours.get("status") != "ok":
            lines.append(f"| {name} | – | {(ours or {}).get('status', '–')} | | | | | |")
            continue
        notes, budget = ours.get("notes") or {}, ours["budget_s"]
        final = notes.get("call_to_final_s")
        over = f"{100 * (final / budget - 1):+.0f} %" if final else "–"
        parts = ours.get("at_peak_mb") or {}
        server = sum(v for k, v in parts.items() if k.startswith("cli["))
        worker = sum(v for k, v in parts.items() if not k.startswith(("cli[", "run_one[")))
        peer_mb = f"{other['peak_mb']:.0f} MB" if other and other.get("peak_mb") else "–"
        lines.append(
            f"| {name} | {budget} s | {_f(final, 1)} s | {over} | "
            f"{_f(notes.get('first_model_s'), 1)} s | {ours['peak_mb']:.0f} MB "
            f"({server:.0f} / {worker:.0f}) | {peer_mb} | {ours.get('load_avg_1m', '–')} |"
        )
    return lines


def render_promise(meta: dict[str, Any], records: list[Record]) -> str:
    by = {(r["dataset"], r["contestant"]): r for r in records}
    datasets: list[str] = meta["datasets"]
    budgets = meta.get("budgets_s") or {}
    peer = "flaml"
    lines = [
        "# Issue #17: one call, one budget",
        "",
        f"Command: `{meta['command']}` (started {meta['started']}, {meta['cpus']} CPUs). "
        f"Budgets: {', '.join(f'{k} {v} s' for k, v in budgets.items())}; records kept from "
        "earlier runs (`--merge`) carry their own budget in `results.json`.",
        "",
        "## Quality (test split, primary metric)",
        "",
        *_quality(datasets, by, peer),
        "",
        "## Time, memory, first model (ours through the MCP server)",
        "",
        *_resources(datasets, by, peer),
        "",
        "`load` is the 1-minute load average when the run ended (2 CPUs: above 2 means the "
        "run shared them with other work).",
    ]
    return "\n".join(lines) + "\n"
