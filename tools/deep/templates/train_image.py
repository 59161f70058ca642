"""Fine-tune a vision backbone: image classification or image regression.

Records: ``{"image": "<path relative to the data folder>", "label": ...}`` (classification)
or ``{"image": ..., "target": <number>}`` (regression; targets are standardised for training
and restored at prediction). Metrics: accuracy and macro F1; RMSE, MAE and R². See
``deep_common`` for the run contract (folders, config, dry run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import deep_common as common
import deep_infer
import deep_tiny as tiny
import numpy as np
import torch
from PIL import Image
from transformers import (
    AutoImageProcessor,
    AutoModelForImageClassification,
    EvalPrediction,
    Trainer,
    ViTImageProcessor,
)


class ImageRecords(torch.utils.data.Dataset[dict[str, Any]]):
    """Images read lazily from the data folder, each with its label index or scaled target."""

    def __init__(self, root: Path, records: list[dict[str, Any]], targets: list[float]) -> None:
        self.root, self.records, self.targets = root, records, targets

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        with Image.open(self.root / self.records[index]["image"]) as image:
            return {"image": image.convert("RGB"), "target": self.targets[index]}


def collate(processor: Any, regression: bool) -> Any:
    def batch(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        pixels = processor(images=[item["image"] for item in items], return_tensors="pt")
        dtype = torch.float32 if regression else torch.long
        return {
            "pixel_values": pixels["pixel_values"],
            "labels": torch.tensor([item["target"] for item in items], dtype=dtype),
        }

    return batch


def regression_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """On the standardised scale the model learns; the test scores are restored after."""
    predicted = np.asarray(prediction.predictions).reshape(-1)
    truth = np.asarray(prediction.label_ids).reshape(-1)
    error = predicted - truth
    total = float(np.sum((truth - truth.mean()) ** 2)) or 1.0
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": 1.0 - float(np.sum(error**2)) / total,
    }


def model_for(run: common.Run, regression: bool, scale: tuple[float, float]) -> Any:
    regressor = {"num_labels": 1, "problem_type": "regression"}
    names = regressor if regression else common.label_names(run)
    if run.dry_run:
        model = AutoModelForImageClassification.from_config(
            tiny.config(str(run["model_type"]), **names)
        )
    else:
        model = AutoModelForImageClassification.from_pretrained(
            run["backbone"], ignore_mismatched_sizes=True, **names
        )
    # Kept in config.json so that predictions come back on the target's own scale.
    model.config.mltrainer_target_mean, model.config.mltrainer_target_std = scale
    return model


def processor_for(run: common.Run) -> Any:
    if run.dry_run:
        side = tiny.TINY_IMAGE_SIZE[str(run["model_type"])]
        return ViTImageProcessor(size={"height": side, "width": side})
    return AutoImageProcessor.from_pretrained(run["backbone"])


def main() -> None:
    run = common.start(__doc__ or "")
    regression = run["task"] == "image_regression"
    splits = {name: common.load_split(run, name) for name in common.SPLITS}
    raw = [float(r["target"]) for r in splits["train"]] if regression else [0.0]
    scale = (float(np.mean(raw)), float(np.std(raw)) or 1.0) if regression else (0.0, 1.0)
    index = {label: i for i, label in enumerate(run.labels)}

    def targets(records: list[dict[str, Any]]) -> list[float]:
        if regression:
            return [(float(r["target"]) - scale[0]) / scale[1] for r in records]
        return [index[str(r["label"])] for r in records]

    data = {name: ImageRecords(run.data, rs, targets(rs)) for name, rs in splits.items()}
    processor = processor_for(run)
    model = model_for(run, regression, scale)
    watch = common.Watch(run, model)
    trainer = Trainer(
        model=model,
        args=common.training_args(run, remove_unused_columns=False),
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        data_collator=collate(processor, regression),
        processing_class=processor,
        compute_metrics=regression_metrics if regression else common.classification_metrics,
        callbacks=[watch],
    )
    trainer.train()
    scored = common.scores(trainer, data["test"])
    if regression:  # errors back on the target's own scale
        for scores in scored:
            for key in ("rmse", "mae"):
                scores[key] *= scale[1]
    common.save(run, trainer.model, processor)
    common.finish(run, watch, splits, scored)
    sample = [Image.open(run.data / r["image"]) for r in splits["test"][:4]]
    common.check_reload(run, deep_infer.predict(run.output, sample), len(sample))


if __name__ == "__main__":
    main()
