"""Tiny synthetic input for a dry run: a few records of the plan's family, with its labels.

Images are small coloured PNGs (a box drawn where a detection record says it is), texts are
drawn from a small vocabulary; every split holds every label, so each script path runs.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from mltrainer.tools.deep.models import DeepPlan

WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "runs",
    "sits",
    "quickly",
    "blue",
    "red",
    "house",
    "garden",
    "river",
    "sees",
    "under",
    "over",
]
PER_SPLIT = {"train": 8, "validation": 4, "test": 4}
IMAGE_SIZE = (40, 32)


def write_synthetic_input(plan: DeepPlan, dest: Path) -> dict[str, int]:
    """``dest/{train,validation,test}.jsonl`` (and images) for the plan; records per split."""
    rng = random.Random(plan.seed)
    dest.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, n in PER_SPLIT.items():
        records = [_record(plan, rng, dest, f"{split}-{i}", i) for i in range(n)]
        with (dest / f"{split}.jsonl").open("w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in records)
        counts[split] = n
    return counts


def _sentence(rng: random.Random, n: int = 6) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _label(plan: DeepPlan, i: int) -> str:
    return plan.labels[i % len(plan.labels)]


def _record(plan: DeepPlan, rng: random.Random, dest: Path, name: str, i: int) -> dict[str, Any]:
    family = plan.family
    if family == "image":
        image = _image(dest, name, rng, None)
        if plan.task == "image_regression":
            return {"image": image, "target": rng.uniform(0, 10)}
        return {"image": image, "label": _label(plan, i)}
    if family == "detection":
        box = [rng.randint(0, 15), rng.randint(0, 10), rng.randint(8, 20), rng.randint(8, 18)]
        return {"image": _image(dest, name, rng, box), "boxes": [box], "labels": [_label(plan, i)]}
    if plan.task == "token_classification":
        tokens = _sentence(rng).split()
        return {"tokens": tokens, "tags": [_label(plan, i + j) for j in range(len(tokens))]}
    if family == "text":
        return {"text": _sentence(rng), "label": _label(plan, i)}
    if family == "seq2seq":
        source = _sentence(rng, 10)
        return {"source": source, "target": " ".join(source.split()[::2])}
    return {
        "messages": [
            {"role": "user", "content": _sentence(rng)},
            {"role": "assistant", "content": _sentence(rng, 4)},
        ]
    }


def _image(dest: Path, name: str, rng: random.Random, box: list[int] | None) -> str:
    from PIL import Image, ImageDraw

    colour = tuple(rng.randint(0, 255) for _ in range(3))
    image = Image.new("RGB", IMAGE_SIZE, colour)  # type: ignore[arg-type]
    if box is not None:
        x, y, w, h = box
        ImageDraw.Draw(image).rectangle([x, y, x + w, y + h], fill=(255, 255, 255))
    path = dest / "images" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return f"images/{path.name}"
