"""The scaling curve (issue #17): time, peak memory and test score against rows, to a PNG.

    python -m bench.automl.run --out-dir bench/automl/scaling --budget 60 --timeout 1500 \\
        --datasets mixed_10k,mixed_100k,mixed_1m,mixed_10m --contestants served,flaml,xgboost
    python -m bench.automl.scaling bench/automl/scaling      # → scaling.png and scaling.md

The table is the generated mixed table (``bench.automl.synthetic.mixed``: 50 columns of
numbers, missing values, 3–50k-level categoricals, a date) at each size, 75 % of it trained on.
Time is call → final model for ours (through the MCP server, loading and refit included) and
fit + predict for the others; memory is the peak of the process tree (ours: server + worker).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

LABELS = {"served": "ours (train_model)", "flaml": "FLAML", "xgboost": "XGBoost defaults"}


def _seconds(record: dict[str, Any]) -> float | None:
    notes = record.get("notes") or {}
    return notes.get("call_to_final_s") or record.get("fit_s")


def curves(records: list[dict[str, Any]]) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Each contestant's records that finished, ordered by training rows."""
    by: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for record in records:
        if record.get("status") == "ok" and record["dataset"].startswith("mixed_"):
            by.setdefault(record["contestant"], []).append((record["n_train"], record))
    return {name: sorted(points, key=lambda p: p[0]) for name, points in by.items()}


def table(meta: dict[str, Any], records: list[dict[str, Any]]) -> str:
    lines = [
        f"Command: `{meta['command']}` ({meta['started']}, budget {meta['budget_s']} s)",
        *(["", meta["note"]] if meta.get("note") else []),
        "",
        "| rows (train) | contestant | ROC AUC | time | peak memory | load |",
        "|---|---|---|---|---|---|",
    ]
    for record in sorted(records, key=lambda r: (r.get("n_train", 0), r["contestant"])):
        if not record["dataset"].startswith("mixed_"):
            continue
        auc = (record.get("scores") or {}).get("roc_auc")
        seconds = _seconds(record)
        lines.append(
            f"| {record.get('n_train', '?')} | {LABELS.get(record['contestant'], record['contestant'])} "
            f"| {'–' if auc is None else f'{auc:.4f}'} | "
            f"{'–' if seconds is None else f'{seconds:.1f} s'} | "
            f"{record.get('peak_mb', 0):.0f} MB | {record.get('load_avg_1m', '–')} |"
            + ("" if record.get("status") == "ok" else f" {record.get('status')}")
        )
    return "\n".join(lines) + "\n"


def plot(meta: dict[str, Any], records: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("time (s)", _seconds),
        ("peak memory (MB)", lambda r: r.get("peak_mb")),
        ("test ROC AUC", lambda r: (r.get("scores") or {}).get("roc_auc")),
    ]
    figure, axes = plt.subplots(1, 3, figsize=(13, 4))
    for axis, (title, value) in zip(axes, panels, strict=True):
        for name, points in curves(records).items():
            xs = [rows for rows, r in points if value(r) is not None]
            ys = [value(r) for _, r in points if value(r) is not None]
            axis.plot(xs, ys, marker="o", label=LABELS.get(name, name))
        axis.set_xscale("log")
        axis.set_xlabel("training rows")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    budget = meta["budget_s"]
    axes[0].axhline(budget * 1.1, color="grey", linestyle="--", label=f"budget + 10 % ({budget} s)")
    axes[0].legend(fontsize=8)
    figure.suptitle(f"Mixed 50-column table, budget {budget} s, 2 shared CPUs")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    data = json.loads((args.out_dir / "results.json").read_text())
    (args.out_dir / "scaling.md").write_text(table(data["meta"], data["records"]))
    plot(data["meta"], data["records"], args.out_dir / "scaling.png")
    print(f"wrote {args.out_dir / 'scaling.md'} and {args.out_dir / 'scaling.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
