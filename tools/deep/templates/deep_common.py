"""What every training script of mltrainer-mcp shares: the run contract, training, outputs.

These scripts run on a remote GPU machine (or the local sandbox for their dry run) where
mltrainer-mcp is not installed: this module, ``deep_infer.py`` and ``deep_tiny.py`` are copied
next to the script, with its ``config.json``. The contract (the same as ``submit_training``'s):

- ``--config`` (default: ``config.json`` beside the script): the plan's parameters.
- ``--data`` (default: ``$MLTRAINER_INPUT_DIR``, else ``./input``): ``train.jsonl``,
  ``validation.jsonl`` and ``test.jsonl``, one record a line, and any image files they name
  by a path relative to that folder.
- ``--output`` (default: ``$MLTRAINER_OUTPUT_DIR``, else ``./output``): the model folder --
  ``model.safetensors``, ``config.json``, the tokenizer or image processor, ``metrics.json``,
  ``training_curves.png``, ``README.md`` (model card).
- ``MLTRAINER_DRY_RUN=1``: nothing is downloaded; a tiny randomly initialised model of the same
  architecture (``model_type``) is built from a config, each split is cut to a few records and
  training stops after ``dry_run_steps`` steps. Everything else runs as for real.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from transformers import (
    EvalPrediction,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

SPLITS = ("train", "validation", "test")


@dataclass
class Run:
    """One run: its parameters (config.json as written by the planner) and its folders."""

    config: dict[str, Any]
    data: Path
    output: Path
    dry_run: bool
    started: float = field(default_factory=time.monotonic)

    def __getitem__(self, key: str) -> Any:
        return self.config[key]

    @property
    def labels(self) -> list[str]:
        return list(self.config.get("labels") or [])


def start(description: str) -> Run:
    """Parse the command line, read the config, seed everything."""
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", type=Path, default=here / "config.json")
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("MLTRAINER_INPUT_DIR", "input"))
    )
    parser.add_argument(
        "--output", type=Path, default=Path(os.environ.get("MLTRAINER_OUTPUT_DIR", "output"))
    )
    args = parser.parse_args()
    config = json.loads(args.config.read_text(encoding="utf-8"))
    dry_run = os.environ.get("MLTRAINER_DRY_RUN", "") not in ("", "0")
    args.output.mkdir(parents=True, exist_ok=True)
    seed = int(config.get("seed", 0))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    transformers.utils.logging.disable_progress_bar()
    if dry_run:
        torch.set_num_threads(1)  # a tiny model: more threads only add start-up and contention
    return Run(config=config, data=args.data, output=args.output, dry_run=dry_run)


def load_split(run: Run, split: str) -> list[dict[str, Any]]:
    """The records of one split; a dry run keeps the first few only."""
    path = run.data / f"{split}.jsonl"
    with path.open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    if not records:
        raise SystemExit(f"{path} holds no records: every split needs at least one.")
    return records[: int(run["dry_run_records"])] if run.dry_run else records


class Rows(torch.utils.data.Dataset[dict[str, Any]]):
    """Encoded records held in memory, as the Trainer takes them."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]


def training_args(run: Run, **extra: Any) -> Any:
    """The Trainer's arguments: evaluate each epoch (each step in a dry run), no checkpoints.

    ``Watch`` keeps the best weights in memory instead of the Trainer's
    ``load_best_model_at_end``: that reloads checkpoints without the key conversion some
    architectures (ViT in transformers 5) need, and would silently keep the last weights.
    """
    precision = "fp32" if run.dry_run or not torch.cuda.is_available() else run["precision"]
    cls: type[TrainingArguments] = extra.pop("args_class", TrainingArguments)
    strategy = "steps" if run.dry_run else "epoch"
    return cls(
        output_dir=str(run.output / "checkpoints"),
        learning_rate=float(run["learning_rate"]),
        num_train_epochs=float(run["epochs"]),
        max_steps=int(run["dry_run_steps"]) if run.dry_run else -1,
        per_device_train_batch_size=int(run["batch_size"]),
        per_device_eval_batch_size=int(run["eval_batch_size"]),
        gradient_accumulation_steps=1 if run.dry_run else int(run["grad_accum"]),
        weight_decay=float(run["weight_decay"]),
        warmup_steps=0 if run.dry_run else float(run["warmup_ratio"]),
        fp16=precision == "fp16",
        bf16=precision == "bf16",
        eval_strategy=strategy,
        logging_strategy=strategy,
        eval_steps=1,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=int(run["seed"]),
        use_cpu=run.dry_run,
        dataloader_num_workers=0,
        disable_tqdm=True,
        **extra,
    )


class Watch(TrainerCallback):
    """Each evaluation's losses and scores (the curves), early stopping on the validation
    split, and the best weights seen, kept in memory and restored at the end.

    Only trainable tensors are copied: with LoRA that is the adapters, a few MB.
    """

    def __init__(self, run: Run, model: torch.nn.Module) -> None:
        self.key = f"eval_{run['selection_metric']}"
        self.sign = 1.0 if run["selection_greater_is_better"] else -1.0
        self.patience = int(run["early_stopping_patience"])
        self.model = model
        self.rows: list[dict[str, float]] = []
        self.best, self.best_epoch, self.waited = -math.inf, 0.0, 0
        self.weights: dict[str, torch.Tensor] = {}
        self.train_loss = math.nan
        self.done = False  # evaluations after training score the kept weights: not recorded

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if logs and "loss" in logs:
            self.train_loss = float(logs["loss"])

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if self.done or not metrics or self.key not in metrics:
            return
        row = {"epoch": float(state.epoch or 0), "step": float(state.global_step)}
        row["train_loss"] = self.train_loss
        row.update({k: float(v) for k, v in timeless(metrics).items() if _is_number(v)})
        self.rows.append(row)
        score = self.sign * float(metrics[self.key])
        if score > self.best:
            self.best, self.best_epoch, self.waited = score, row["epoch"], 0
            self.weights = {
                name: tensor.detach().to("cpu", copy=True)
                for name, tensor in self.model.named_parameters()
                if tensor.requires_grad
            }
            return
        self.waited += 1
        if self.waited >= self.patience:
            control.should_training_stop = True

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.done = True
        parameters = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in self.weights.items():
                parameters[name].copy_(tensor)


def label_names(run: Run) -> dict[str, Any]:
    """The config entries that name a classifier's outputs."""
    labels = run.labels
    return {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def plot_history(rows: list[dict[str, float]], metric: str, path: Path) -> None:
    """training_curves.png: losses and the planned metric against the epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (losses, scores) = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = [row["epoch"] for row in rows]
    for key, label in (("train_loss", "train loss"), ("eval_loss", "validation loss")):
        losses.plot(epochs, [row.get(key, math.nan) for row in rows], marker="o", label=label)
    scores.plot(epochs, [row.get(f"eval_{metric}", math.nan) for row in rows], marker="o")
    losses.set(xlabel="epoch", title="loss")
    scores.set(xlabel="epoch", title=f"validation {metric}")
    losses.legend()
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=90)
    plt.close(figure)


def finish(
    run: Run,
    watch: Watch,
    splits: dict[str, list[dict[str, Any]]],
    scored: tuple[dict[str, float], dict[str, float]],
) -> dict[str, Any]:
    """metrics.json, training_curves.png and README.md in the model folder."""
    metric = str(run["metric"])
    validation, test = scored
    sizes = {name: len(records) for name, records in splits.items()}
    summary = {
        "task": run["task"],
        "family": run["family"],
        "backbone": run["backbone"],
        "model_type": run["model_type"],
        "metric": metric,
        "greater_is_better": bool(run["greater_is_better"]),
        "labels": run.labels,
        "validation": _numbers(validation),
        "test": _numbers(test),
        "history": watch.rows,
        "best_epoch": watch.best_epoch,
        "stopped_early": watch.waited >= watch.patience,
        "sizes": sizes,
        "dry_run": run.dry_run,
        "train_seconds": round(time.monotonic() - run.started, 2),
    }
    (run.output / "metrics.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    plot_history(watch.rows, metric, run.output / "training_curves.png")
    (run.output / "README.md").write_text(model_card(run, summary), encoding="utf-8")
    return summary


def _numbers(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in metrics.items() if _is_number(v)}


def model_card(run: Run, summary: dict[str, Any]) -> str:
    scores = "\n".join(f"| {k} | {v} |" for k, v in summary["test"].items())
    warning = (
        "\n> **Dry run**: a tiny randomly initialised model trained for a few steps on a "
        "sample; its scores mean nothing.\n"
        if run.dry_run
        else ""
    )
    return (
        "---\nlibrary_name: transformers\n"
        f"pipeline_tag: {run['pipeline_tag']}\nbase_model: {run['backbone']}\n"
        "tags:\n- mltrainer-mcp\n---\n\n"
        f"# {run['task'].replace('_', ' ')} fine-tuned from {run['backbone']}\n{warning}\n"
        f"Trained by mltrainer-mcp on {summary['sizes'].get('train', 0)} records "
        f"(validation {summary['sizes'].get('validation', 0)}, test "
        f"{summary['sizes'].get('test', 0)}). Primary metric: `{summary['metric']}`.\n\n"
        f"## Held-out test scores\n\n| metric | value |\n| --- | --- |\n{scores}\n\n"
        "Training curves: `training_curves.png`; every figure: `metrics.json`.\n"
    )


def scores(trainer: Any, test: Any) -> tuple[dict[str, float], dict[str, float]]:
    """Validation scores of the kept weights, and the test split's, scored once, here."""
    validation = prefixed(trainer.evaluate(), "eval_")
    return validation, prefixed(trainer.evaluate(test, metric_key_prefix="test"), "test_")


def save(run: Run, model: Any, processor: Any) -> None:
    """The model (safetensors) and its tokenizer or image processor; checkpoints removed."""
    import shutil

    model.save_pretrained(run.output, safe_serialization=True)
    processor.save_pretrained(run.output)
    shutil.rmtree(run.output / "checkpoints", ignore_errors=True)


def prefixed(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    """Trainer scores without their ``test_``/``eval_`` prefix, and without its timings."""
    return {key.removeprefix(prefix): value for key, value in timeless(metrics).items()}


def timeless(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if not k.endswith(("runtime", "per_second", "epoch"))}


def classification_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """Accuracy and macro F1 (scikit-learn) from logits."""
    from sklearn.metrics import accuracy_score, f1_score

    logits = prediction.predictions
    predicted = np.argmax(logits[0] if isinstance(logits, tuple) else logits, axis=-1)
    truth = np.asarray(prediction.label_ids)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "f1_macro": float(f1_score(truth, predicted, average="macro", zero_division=0)),
    }


def check_reload(run: Run, predictions: list[Any], expected: int) -> None:
    """The last step: the saved folder reloaded and gave one prediction per input."""
    if len(predictions) != expected:
        raise SystemExit(f"The reloaded model gave {len(predictions)} predictions for {expected}.")
    sample = {"inputs": expected, "predictions": predictions}
    (run.output / "reload_check.json").write_text(json.dumps(sample, indent=2), encoding="utf-8")
    print(f"mltrainer: model folder reloaded; {expected} predictions", flush=True)
