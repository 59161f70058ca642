"""Traps for honest numbers (issue #14): what train_model reports against fresh rows.

Each trap is a small synthetic dataset where a careless AutoML reports a score that new rows
from the same generator do not confirm: a target drifting in time, post-outcome and noisy-copy
columns, pure noise, noise features that look important, 1.8% positives, a class with two
rows, a heavy-tailed target, rows that should not be predicted silently. Every trap is trained
and predicted through the real MCP server (in memory), as a person would; the fresh-rows score
is computed here from the predictions file.

    python -m bench.traps                    # every trap, 10 s budget, a table on stdout
    python -m bench.traps --traps null,drift --budget 20 --json out.json
    python -m bench.traps --compare before.json after.json   # two runs side by side

The generators are also what tests/test_honesty_*.py train on. The script uses only the tools'
public arguments, so it runs unchanged on an older checkout (the "before" column).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class Trap:
    """A dataset to train on, fresh rows from the same generator, and how to score them."""

    name: str
    target: str
    metric: str  # how fresh rows are scored: roc_auc, r2, f1, accuracy
    train: pd.DataFrame
    fresh: pd.DataFrame  # with the target
    what: str
    request: dict[str, Any] = field(default_factory=dict)
    # columns unknown when predictions are made (post-outcome): blank in the rows predicted
    unknown_at_prediction: list[str] = field(default_factory=list)

    def fresh_inputs(self) -> pd.DataFrame:
        rows = self.fresh.drop(columns=[self.target])
        for name in self.unknown_at_prediction:
            rows[name] = np.nan
        return rows


def _yes(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.where(rng.random(len(p)) < p, "yes", "no")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def drift(seed: int = 0) -> Trap:
    """3,000 dated events over 948 days whose level drifts; fresh rows: the next 200 days."""

    def rows(n: int, low: float, high: float, rng: np.random.Generator) -> pd.DataFrame:
        days = np.sort(rng.uniform(low, high, n))
        x1, x2, x3 = rng.normal(size=(3, n))
        kind = rng.choice(["a", "b", "c"], n)
        level = 15.0 * days / 948 + 1.0 * np.sin(2 * np.pi * days / 365.25)
        y = level + 1.5 * x1 - x2 + (kind == "a") + rng.normal(scale=0.5, size=n)
        dates = pd.Timestamp("2021-01-01") + pd.to_timedelta(days, unit="D")
        return pd.DataFrame(
            {"date": dates.strftime("%Y-%m-%d"), "x1": x1, "x2": x2, "x3": x3, "kind": kind, "y": y}
        )

    rng = np.random.default_rng(seed)
    return Trap(
        "drift",
        "y",
        "r2",
        rows(3000, 0, 948, rng),
        rows(1000, 948, 1148, rng),
        "the level drifts with the date; no time_column given; fresh: the next 200 days",
    )


def leak(seed: int = 0) -> Trap:
    """A post-outcome flag (on 95% of positives, no negative), the label plus N(0, 0.3) noise,
    and a copy agreeing on 99% of rows; at prediction time none of them is known yet."""

    def rows(n: int, rng: np.random.Generator) -> pd.DataFrame:
        x = rng.normal(size=(4, n))
        y = _yes(_sigmoid(x[0] - 0.5 * x[1] + 0.5 * x[2]), rng)
        positive = y == "yes"
        flipped = positive.copy()
        flip = rng.choice(n, size=n // 100, replace=False)
        flipped[flip] = ~flipped[flip]
        return pd.DataFrame(
            {
                "x1": x[0],
                "x2": x[1],
                "x3": x[2],
                "x4": x[3],
                "refund_issued": np.where(positive & (rng.random(n) < 0.95), 1, 0),
                "review_score": positive + rng.normal(scale=0.3, size=n),
                "status_copy": np.where(flipped, "closed", "open"),
                "churned": y,
            }
        )

    rng = np.random.default_rng(seed)
    return Trap(
        "leakage",
        "churned",
        "roc_auc",
        rows(3000, rng),
        rows(3000, rng),
        "post-outcome flag (purity 0.98), noisy copy, 99% copy; fresh rows: those three unknown",
        unknown_at_prediction=["refund_issued", "review_score", "status_copy"],
    )


def null(seed: int = 0, n: int = 4000) -> Trap:
    """Pure noise: no feature says anything about the label."""

    def rows(n: int, rng: np.random.Generator) -> pd.DataFrame:
        frame = pd.DataFrame(rng.normal(size=(n, 10)), columns=[f"x{i}" for i in range(10)])
        frame["shop"] = rng.choice(["north", "south", "east", "west"], n)
        frame["label"] = _yes(np.full(n, 0.5), rng)
        return frame

    rng = np.random.default_rng(seed)
    return Trap("null", "label", "roc_auc", rows(n, rng), rows(n, rng), "pure noise")


def noise_importance(seed: int = 0) -> Trap:
    """Two informative features and three of pure noise; fresh: importance on 10k new rows."""

    def rows(n: int, rng: np.random.Generator) -> pd.DataFrame:
        x = rng.normal(size=(5, n))
        y = _yes(_sigmoid(3 * np.sin(2 * x[0]) + 2 * np.abs(x[1]) - 1.6), rng)
        names = ["signal1", "signal2", "noise1", "noise2", "noise3"]
        return pd.DataFrame(dict(zip(names, x, strict=True))).assign(label=y)

    rng = np.random.default_rng(seed)
    return Trap(
        "importance",
        "label",
        "roc_auc",
        rows(1000, rng),
        rows(10000, rng),
        "largest importance of a pure-noise feature, reported vs on 10k fresh rows",
    )


def imbalance(seed: int = 0) -> Trap:
    """About 1.8% positives."""

    def rows(n: int, rng: np.random.Generator) -> pd.DataFrame:
        x = rng.normal(size=(6, n))
        z = -4.4 + 0.9 * x[0] + 0.6 * x[1] - 0.4 * x[2] + 0.3 * x[3]
        frame = pd.DataFrame({f"x{i}": x[i] for i in range(6)})
        return frame.assign(fraud=_yes(_sigmoid(z), rng))

    rng = np.random.default_rng(seed)
    return Trap("imbalance", "fraud", "f1", rows(6000, rng), rows(20000, rng), "1.8% positives; F1")


def rare_class(seed: int = 0) -> Trap:
    """Three classes and a fourth with two rows."""

    def rows(n: int, rng: np.random.Generator, rare: int) -> pd.DataFrame:
        x = rng.normal(size=(3, n))
        z = x[0] + 0.5 * x[1] + rng.normal(scale=0.5, size=n)
        label = np.where(z < -0.5, "low", np.where(z < 0.5, "mid", "high")).astype(object)
        label[:rare] = "extreme"
        return pd.DataFrame({"a": x[0], "b": x[1], "c": x[2], "grade": label})

    rng = np.random.default_rng(seed)
    fresh = rows(3000, rng, 0)
    return Trap(
        "rare_class",
        "grade",
        "accuracy",
        rows(600, rng, 2),
        fresh,
        "a class with two rows beside three of ~200",
        request={"metric": "accuracy"},
    )


def skewed(seed: int = 0) -> Trap:
    """A heavy-tailed (log-normal) regression target."""

    def rows(n: int, rng: np.random.Generator) -> pd.DataFrame:
        x = rng.normal(size=(4, n))
        y = 100 * np.exp(1.2 * x[0] + 0.6 * x[1] + rng.normal(scale=0.4, size=n))
        return pd.DataFrame({f"x{i}": x[i] for i in range(4)}).assign(claim=y)

    rng = np.random.default_rng(seed)
    return Trap("skewed", "claim", "r2", rows(2000, rng), rows(5000, rng), "log-normal target; R²")


def odd_rows(seed: int = 0) -> Trap:
    """Fresh rows the model should warn about: all missing, far out of range, unseen shops."""

    def rows(n: int, rng: np.random.Generator) -> pd.DataFrame:
        x = rng.normal(size=(3, n))
        shop = rng.choice(["north", "south", "east"], n)
        y = _yes(_sigmoid(x[0] + x[1] + (shop == "north")), rng)
        return pd.DataFrame({"x1": x[0], "x2": x[1], "x3": x[2], "shop": shop, "label": y})

    rng = np.random.default_rng(seed)
    fresh = rows(40, rng)
    fresh.loc[:4, ["x1", "x2", "x3", "shop"]] = np.nan  # five rows with nothing known
    fresh.loc[5:9, "x1"] = 40.0  # far beyond the training range
    fresh.loc[10:19, "shop"] = "harbour"  # a shop never seen
    return Trap("odd_rows", "label", "roc_auc", rows(1000, rng), fresh, "rows to warn about")


TRAPS: dict[str, Callable[[int], Trap]] = {
    "drift": drift,
    "leakage": leak,
    "null": null,
    "importance": noise_importance,
    "imbalance": imbalance,
    "rare_class": rare_class,
    "skewed": skewed,
    "odd_rows": odd_rows,
}


# -- scoring fresh rows ----------------------------------------------------------------------


def fresh_score(trap: Trap, predictions: pd.DataFrame, positive: str = "yes") -> float:
    from sklearn.metrics import accuracy_score, f1_score, r2_score, roc_auc_score

    truth = trap.fresh[trap.target].to_numpy()
    if trap.metric == "r2":
        return float(r2_score(truth, predictions["prediction"].astype(float)))
    if trap.metric == "roc_auc":
        return float(roc_auc_score(truth == positive, predictions[f"proba_{positive}"]))
    labels = predictions["prediction"].astype(str).to_numpy()
    if trap.metric == "f1":
        return float(f1_score(truth == positive, labels == positive, zero_division=0))
    return float(accuracy_score(truth.astype(str), labels))


def top_decile(trap: Trap, predictions: pd.DataFrame, positive: str = "yes") -> tuple[float, float]:
    """Mean predicted probability and actual positive rate in the top tenth by prediction."""
    proba = predictions[f"proba_{positive}"].to_numpy(dtype=float)
    truth = trap.fresh[trap.target].to_numpy() == positive
    top = np.argsort(-proba)[: max(1, len(proba) // 10)]
    return float(proba[top].mean()), float(truth[top].mean())


# -- through the MCP server -------------------------------------------------------------------


@dataclass
class Trained:
    """A trap trained with train_model and its fresh rows predicted with predict."""

    job: dict[str, Any]  # train_model's structured result
    prediction: dict[str, Any] = field(default_factory=dict)  # predict's
    predictions: pd.DataFrame | None = None


async def train_and_predict(
    client: Any, trap: Trap, folder: Path, budget: int, **extra: Any
) -> Trained:
    """Train on the trap's rows, then predict its fresh rows (post-outcome columns blank)."""
    train_path = folder / f"{trap.name}.csv"
    fresh_path = folder / f"{trap.name}_fresh.csv"
    trap.train.to_csv(train_path, index=False)
    trap.fresh_inputs().to_csv(fresh_path, index=False)
    arguments = {
        "dataset": str(train_path),
        "target": trap.target,
        "time_budget_s": budget,
        "wait_s": 50,  # the most a call waits; the job is polled below until it ends
        "plots": False,
        **trap.request,
        **extra,
    }
    answer = await client.call_tool("train_model", arguments)
    if answer.is_error:
        raise RuntimeError(f"train_model refused {trap.name}: {answer.content}")
    trained = Trained(answer.structured_content or {})
    while trained.job.get("status") in ("queued", "running"):
        status = await client.call_tool(
            "job_status", {"job_id": trained.job["job_id"], "wait_s": 50}
        )
        trained.job = status.structured_content or {}
    if trained.job.get("status") == "succeeded":
        predicted = await client.call_tool(
            "predict", {"model": trained.job["job_id"], "dataset": str(fresh_path)}
        )
        if predicted.is_error:
            raise RuntimeError(f"predict failed on {trap.name}: {predicted.content}")
        trained.prediction = predicted.structured_content or {}
        trained.predictions = pd.read_csv(trained.prediction["predictions_path"])
    return trained


async def run_trap(client: Any, trap: Trap, folder: Path, budget: int) -> dict[str, Any]:
    trained = await train_and_predict(client, trap, folder, budget)
    job = trained.job
    result = job.get("result") or {}
    record: dict[str, Any] = {
        "trap": trap.name,
        "what": trap.what,
        "status": job.get("status"),
        "metric": job.get("metric"),
        "score": job.get("score"),
        "cv_mean": result.get("cv_mean"),
        "holdout": (result.get("holdout") or {}).get(job.get("metric") or ""),
        "headline": result.get("headline") or [],
        "dropped": [d["name"] for d in result.get("dropped_columns") or []],
        "decisions": [f"{d['stage']}: {d['decision']}" for d in result.get("decisions") or []],
        "importance": result.get("feature_importance") or [],
        "warnings": result.get("warnings") or [],
    }
    predictions = trained.predictions
    if predictions is None:
        record["error"] = job.get("error")
        return record
    record["predict_warnings"] = [w["kind"] for w in trained.prediction.get("warnings") or []]
    record["fresh"] = fresh_score(trap, predictions)
    if trap.name == "imbalance":
        record["top_decile"] = top_decile(trap, predictions)
        record["fresh_roc_auc"] = fresh_score(
            Trap(trap.name, trap.target, "roc_auc", trap.train, trap.fresh, ""), predictions
        )
    if trap.name == "odd_rows":
        record["all_missing_p_yes"] = [round(float(p), 3) for p in predictions["proba_yes"][:5]]
    record["reported"] = record["score"]
    if trap.name == "imbalance":  # the label's F1, not the ranking metric it was scored on
        record["reported"] = (result.get("holdout") or {}).get("f1")
    if trap.name == "importance":
        found = await fresh_importance(client, trap, job["job_id"], folder)
        record["fresh_importance"] = found
        noise = [v for k, v in record["importance"] if k.startswith("noise")]
        record["reported"] = max(noise) if noise else None
        record["fresh"] = max(found.values())
    return record


async def fresh_importance(client: Any, trap: Trap, job_id: str, folder: Path) -> dict[str, float]:
    """Permutation importance of the noise features on the fresh rows (one shuffle each)."""
    rng = np.random.default_rng(1)
    base_rows = trap.fresh_inputs()
    out = {}
    base = None
    for name in ["", "noise1", "noise2", "noise3"]:
        rows = base_rows.copy()
        if name:
            rows[name] = rng.permutation(rows[name].to_numpy())
        path = folder / f"importance_{name or 'base'}.csv"
        rows.to_csv(path, index=False)
        predicted = await client.call_tool("predict", {"model": job_id, "dataset": str(path)})
        value = fresh_score(
            trap, pd.read_csv((predicted.structured_content or {})["predictions_path"])
        )
        if not name:
            base = value
        else:
            out[name] = round(float((base or 0.0) - value), 4)
    return out


async def run(names: list[str], budget: int, seed: int) -> list[dict[str, Any]]:
    from mcp import Client

    from mltrainer.server.app import create_server
    from mltrainer.state.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.chdir(folder)  # the current directory is an allowed data root
        settings = Settings(home=folder / "home")
        records = []
        async with Client(create_server(settings)) as client:
            for name in names:
                trap = TRAPS[name](seed)
                print(f"{name:>12} ...", end=" ", flush=True, file=sys.stderr)
                record = await run_trap(client, trap, folder, budget)
                print(record.get("status"), file=sys.stderr)
                records.append(record)
        return records


def table(records: list[dict[str, Any]]) -> str:
    lines = [
        "| trap | metric | reported | CV | fresh rows | gap | caught / said |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        metric = {"importance": "noise importance", "imbalance": "f1"}.get(r["trap"], r["metric"])
        value, fresh = r.get("reported"), r.get("fresh")
        gap = value - fresh if isinstance(value, float) and isinstance(fresh, float) else None
        lines.append(
            f"| {r['trap']} | {metric} | {_f(value)} | {_f(r.get('cv_mean'))} | {_f(fresh)} | "
            f"{_f(gap)} | {_said(r)} |"
        )
    return "\n".join(lines)


def compared(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> str:
    """Two runs' records side by side (``--compare before.json after.json``): per trap the
    reported score, the fresh-rows score and the gap of each, and what the later run said."""
    lines = [
        "| trap | metric | before: reported / fresh / gap | after: reported / fresh / gap "
        "| after: caught / said |",
        "|---|---|---|---|---|",
    ]
    earlier = {r["trap"]: r for r in before}
    for r in after:
        metric = {"importance": "noise importance", "imbalance": "f1"}.get(r["trap"], r["metric"])
        cells = [_numbers(earlier.get(r["trap"], {})), _numbers(r)]
        lines.append(f"| {r['trap']} | {metric} | {cells[0]} | {cells[1]} | {_said(r)} |")
    return "\n".join(lines)


def _numbers(r: dict[str, Any]) -> str:
    value, fresh = r.get("reported"), r.get("fresh")
    gap = value - fresh if isinstance(value, float) and isinstance(fresh, float) else None
    return f"{_f(value)} / {_f(fresh)} / {_f(gap)}"


def _said(r: dict[str, Any]) -> str:
    parts = []
    if r.get("dropped"):
        parts.append("dropped " + ", ".join(r["dropped"]))
    if r.get("headline"):
        parts.append(f"{len(r['headline'])} headline warning(s)")
    validation = [d for d in r.get("decisions", []) if d.startswith("validation:")]
    if r["trap"] == "drift" and validation:
        parts.append(validation[-1].removeprefix("validation: "))
    if r["trap"] == "imbalance" and r.get("top_decile"):
        mean, rate = r["top_decile"]
        parts.append(f"top decile predicted {mean:.3f}, actual {rate:.3f}")
    if r["trap"] == "odd_rows":
        parts.append(f"predict warnings: {', '.join(r.get('predict_warnings') or []) or 'none'}")
        parts.append(f"P(yes) of all-missing rows {r.get('all_missing_p_yes')}")
    if r["trap"] == "rare_class":
        dropped = [d for d in r.get("decisions", []) if d.startswith("search: drop")]
        parts.append("families dropped: " + (", ".join(dropped) if dropped else "none"))
    if r.get("error"):
        parts.append(f"error: {r['error'][:80]}")
    return "; ".join(parts) or "nothing"


def _f(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "–"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--traps", default=",".join(TRAPS))
    parser.add_argument("--budget", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write every record here")
    parser.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("BEFORE", "AFTER"),
        help="print two runs' --json records side by side instead of running",
    )
    args = parser.parse_args(argv)
    if args.compare:
        before, after = (json.loads(path.read_text()) for path in args.compare)
        print(compared(before, after))
        return 0
    names = [n.strip() for n in args.traps.split(",") if n.strip()]
    unknown = [n for n in names if n not in TRAPS]
    if unknown:
        raise SystemExit(f"unknown traps: {unknown}; known: {', '.join(TRAPS)}")
    out = args.json.resolve() if args.json else None
    records = asyncio.run(run(names, args.budget, args.seed))
    if out is not None:
        out.write_text(json.dumps(records, indent=2, default=str))
    print(table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
