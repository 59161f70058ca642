"""Fine-tune an object detector (DETR family: YOLOS, DETR) on COCO-style boxes.

Records: ``{"image": "<path relative to the data folder>", "boxes": [[x, y, width, height],
...], "labels": [<category>, ...]}`` in pixels, as in COCO. Early stopping on the validation
loss; mAP, mAP@50 and mAP@75 (pycocotools) on the validation and test splits at the end. See
``deep_common`` for the run contract (folders, config, dry run).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import deep_common as common
import deep_infer
import deep_tiny as tiny
import torch
from PIL import Image
from transformers import (
    AutoImageProcessor,
    AutoModelForObjectDetection,
    DetrImageProcessor,
    Trainer,
    YolosImageProcessor,
)

DRY_RUN_PROCESSORS = {"yolos": YolosImageProcessor, "detr": DetrImageProcessor}


class BoxRecords(torch.utils.data.Dataset[dict[str, Any]]):
    """Images read lazily, each with its boxes in COCO's annotation format."""

    def __init__(self, root: Path, records: list[dict[str, Any]], labels: list[str]) -> None:
        self.root, self.records = root, records
        self.index = {label: i for i, label in enumerate(labels)}

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item: int) -> dict[str, Any]:
        record = self.records[item]
        with Image.open(self.root / record["image"]) as image:
            rgb = image.convert("RGB")
        boxes = [
            {
                "bbox": [float(v) for v in box],
                "category_id": self.index[str(label)],
                "area": float(box[2]) * float(box[3]),
                "iscrowd": 0,
            }
            for box, label in zip(record["boxes"], record["labels"], strict=True)
        ]
        return {"image": rgb, "annotation": {"image_id": item, "annotations": boxes}}


def collate(processor: Any, model_type: str) -> Any:
    def batch(items: list[dict[str, Any]]) -> dict[str, Any]:
        encoded = processor(
            images=[item["image"] for item in items],
            annotations=[item["annotation"] for item in items],
            return_tensors="pt",
        )
        inputs = {"pixel_values": encoded["pixel_values"], "labels": encoded["labels"]}
        if model_type == "detr" and "pixel_mask" in encoded:
            inputs["pixel_mask"] = encoded["pixel_mask"]
        return inputs

    return batch


def coco_scores(model: Any, processor: Any, data: BoxRecords, batch_size: int) -> dict[str, float]:
    """COCO mAP of the model's boxes on one split (pycocotools, no download)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    truth: dict[str, list[dict[str, Any]]] = {"images": [], "annotations": []}
    truth["categories"] = [{"id": i, "name": name} for name, i in data.index.items()]
    found: list[dict[str, Any]] = []
    model.eval()
    for start in range(0, len(data), batch_size):
        items = [data[i] for i in range(start, min(start + batch_size, len(data)))]
        for item in items:
            image_id = item["annotation"]["image_id"]
            width, height = item["image"].size
            truth["images"].append({"id": image_id, "width": width, "height": height})
            for box in item["annotation"]["annotations"]:
                truth["annotations"].append(
                    {**box, "id": len(truth["annotations"]) + 1, "image_id": image_id}
                )
        found += _detections(model, processor, items)
    if not found or not truth["annotations"]:
        return {"map": 0.0, "map_50": 0.0, "map_75": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its tables
        reference = COCO()
        reference.dataset = truth
        reference.createIndex()
        evaluation = COCOeval(reference, reference.loadRes(found), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = [max(0.0, float(v)) for v in evaluation.stats[:3]]  # -1 means "nothing to score"
    return {"map": stats[0], "map_50": stats[1], "map_75": stats[2]}


def _detections(model: Any, processor: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pixels = processor(images=[item["image"] for item in items], return_tensors="pt")
    with torch.no_grad():
        outputs = model(pixel_values=pixels["pixel_values"].to(model.device))
    sizes = torch.tensor([[item["image"].height, item["image"].width] for item in items])
    results = processor.post_process_object_detection(outputs, threshold=0.0, target_sizes=sizes)
    found = []
    for item, result in zip(items, results, strict=True):
        for score, label, box in zip(
            result["scores"].tolist(),
            result["labels"].tolist(),
            result["boxes"].tolist(),
            strict=True,
        ):
            x0, y0, x1, y1 = box
            found.append(
                {
                    "image_id": item["annotation"]["image_id"],
                    "category_id": int(label),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "score": float(score),
                }
            )
    return found


def model_for(run: common.Run) -> Any:
    names = common.label_names(run)
    if run.dry_run:
        return AutoModelForObjectDetection.from_config(tiny.config(str(run["model_type"]), **names))
    return AutoModelForObjectDetection.from_pretrained(
        run["backbone"], ignore_mismatched_sizes=True, **names
    )


def processor_for(run: common.Run) -> Any:
    if run.dry_run:
        side = tiny.TINY_IMAGE_SIZE[str(run["model_type"])]
        processor = DRY_RUN_PROCESSORS[str(run["model_type"])]
        return processor(size={"shortest_edge": side, "longest_edge": side})
    return AutoImageProcessor.from_pretrained(run["backbone"])


def main() -> None:
    run = common.start(__doc__ or "")
    splits = {name: common.load_split(run, name) for name in common.SPLITS}
    data = {name: BoxRecords(run.data, records, run.labels) for name, records in splits.items()}
    processor = processor_for(run)
    model = model_for(run)
    watch = common.Watch(run, model)
    trainer = Trainer(
        model=model,
        args=common.training_args(run, remove_unused_columns=False, prediction_loss_only=True),
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        data_collator=collate(processor, str(run["model_type"])),
        processing_class=processor,
        callbacks=[watch],
    )
    trainer.train()
    batch = int(run["eval_batch_size"])
    validation, test = common.scores(trainer, data["test"])
    validation |= coco_scores(trainer.model, processor, data["validation"], batch)
    test |= coco_scores(trainer.model, processor, data["test"], batch)
    common.save(run, trainer.model, processor)
    common.finish(run, watch, splits, (validation, test))
    sample = [Image.open(run.data / r["image"]) for r in splits["test"][:4]]
    common.check_reload(run, deep_infer.predict(run.output, sample, threshold=0.0), len(sample))


if __name__ == "__main__":
    main()
