"""Turn a recognised dataset into the scripts' input folder: one JSONL file per split.

Every layout becomes the records its family's script reads (see ``templates/deep_common``):
images are copied (hard-linked where possible) under ``images/`` and checked to decode; the
splits are the dataset's own when it comes split, else seeded and stratified by class; a
class missing from a split is refused before anything runs.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mltrainer.state.errors import DatasetError
from mltrainer.tools.deep import frames, images
from mltrainer.tools.deep.layouts import read_conll
from mltrainer.tools.deep.models import DeepLayout, DeepPlan

SPLITS = ("train", "validation", "test")
ROLES = {"human": "user", "gpt": "assistant", "system": "system", "user": "user"}
Record = dict[str, Any]


def prepare_input(layout: DeepLayout, plan: DeepPlan, dest: Path) -> dict[str, int]:
    """Write ``dest/{train,validation,test}.jsonl`` (and images); records per split."""
    dest.mkdir(parents=True, exist_ok=True)
    records = list(_records(layout, dest))
    if not records:
        raise DatasetError(f"{layout.path} yielded no records.", next_step="Check the dataset.")
    splits = _given_splits(records) if plan.split.given else _split(records, plan)
    _check_labels(splits, plan)
    for name in SPLITS:
        with (dest / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for record in splits[name]:
                record.pop("_split", None)
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return {name: len(splits[name]) for name in SPLITS}


def _records(layout: DeepLayout, dest: Path) -> Iterator[Record]:
    path = Path(layout.path)
    if layout.kind == "image_folder":
        yield from _folder_images(path, dest)
    elif layout.kind == "coco":
        yield from _coco(path, dest)
    elif layout.kind == "conll":
        yield from ({"tokens": w, "tags": t} for w, t in read_conll(path))
    else:
        yield from _table(layout, frames.read_table(path), dest)


def _copy_image(source: Path, dest: Path, name: str) -> str:
    failed = images.decode_errors([source])
    if failed:
        raise DatasetError(
            f"Image {failed[0]} does not decode.",
            next_step="Remove or replace it (PNG, JPEG, BMP, GIF, WebP or TIFF), then run again.",
        )
    target = dest / "images" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return f"images/{name}"


def _folder_images(root: Path, dest: Path) -> Iterator[Record]:
    split_dirs = {images.SPLIT_NAMES.get(d.name.lower()): d for d in root.iterdir() if d.is_dir()}
    pre_split = None not in split_dirs and "train" in split_dirs
    roots = {s: d for s, d in split_dirs.items() if s} if pre_split else {"": root}
    number = 0
    for split, folder in roots.items():
        for label, paths in images.class_images(folder).items():
            for path in paths:
                number += 1
                image = _copy_image(path, dest, f"{number:07d}{path.suffix.lower()}")
                yield {"image": image, "label": label, **({"_split": split} if split else {})}


def _coco(path: Path, dest: Path) -> Iterator[Record]:
    data = images.load_coco(path)
    folder = images.coco_image_dir(path, data)
    names = {int(c["id"]): str(c["name"]) for c in data["categories"]}
    boxes: dict[int, list[Any]] = defaultdict(list)
    for note in data["annotations"]:
        boxes[int(note["image_id"])].append(note)
    for number, entry in enumerate(data["images"], start=1):
        source = folder / str(entry["file_name"])
        notes = boxes[int(entry["id"])]
        yield {
            "image": _copy_image(source, dest, f"{number:07d}{source.suffix.lower()}"),
            "boxes": [[float(v) for v in n["bbox"]] for n in notes],
            "labels": [names[int(n["category_id"])] for n in notes],
        }


def _table(layout: DeepLayout, frame: Any, dest: Path) -> Iterator[Record]:
    c = layout.columns
    base = Path(layout.path).parent
    if c.source is not None and c.source not in frame:
        frames.split_translation_column(frame)
    for number, row in enumerate(frame.to_dict("records"), start=1):
        if layout.kind == "image_table":
            image = _table_image(row[c.image], base, dest, number)
            key, column = ("target", c.value) if c.value else ("label", c.label)
            value = float(row[column]) if c.value else str(row[column])
            yield {"image": image, key: value}
        elif layout.kind == "token_table":
            yield {"tokens": [str(t) for t in row[c.tokens]], "tags": [str(t) for t in row[c.tags]]}
        elif layout.kind == "text_table":
            yield {"text": str(row[c.text]), "label": str(row[c.label])}
        elif layout.kind == "text_pair":
            yield {"source": str(row[c.source]), "target": str(row[c.target])}
        elif layout.kind == "chat":
            yield {"messages": _messages(row[c.messages])}
        else:
            prompt = str(row[c.instruction])
            if c.context and isinstance(row.get(c.context), str) and row[c.context].strip():
                prompt += "\n\n" + row[c.context]
            answer = str(row[c.response])
            yield {"messages": [_turn("user", prompt), _turn("assistant", answer)]}


def _turn(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def _messages(value: Any) -> list[dict[str, str]]:
    turns = value.tolist() if hasattr(value, "tolist") else list(value)
    return [
        _turn(
            ROLES.get(str(m.get("role", m.get("from"))), "assistant"),
            str(m.get("content", m.get("value"))),
        )
        for m in turns
    ]


def _table_image(value: Any, base: Path, dest: Path, number: int) -> str:
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if isinstance(value, bytes | bytearray):
        target = dest / "images" / f"{number:07d}.img"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(bytes(value))
        if images.decode_errors([target]):
            raise DatasetError(
                f"The image bytes of row {number} do not decode.",
                next_step="Fix or drop that row (PNG, JPEG, BMP, GIF, WebP or TIFF bytes).",
            )
        return f"images/{target.name}"
    source = (base / str(value)).resolve()
    if not source.is_relative_to(base.resolve()) or not source.is_file():
        raise DatasetError(
            f"Row {number}'s image {value!r} is not a file under {base}.",
            next_step="Image paths are relative to the table's folder; put the images there.",
        )
    return _copy_image(source, dest, f"{number:07d}{source.suffix.lower()}")


def _given_splits(records: list[Record]) -> dict[str, list[Record]]:
    return {name: [r for r in records if r.get("_split") == name] for name in SPLITS}


def _split(records: list[Record], plan: DeepPlan) -> dict[str, list[Record]]:
    """Seeded; stratified by class for classification, so every class is in every split."""
    rng = random.Random(plan.seed)
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        groups[str(record.get("label", ""))].append(record)
    splits: dict[str, list[Record]] = {name: [] for name in SPLITS}
    for label, members in sorted(groups.items()):
        if "label" in members[0] and len(members) < 3:
            raise DatasetError(
                f"Class {label!r} has {len(members)} example(s): train, validation and test "
                "each need at least one.",
                next_step="Add examples of it, or drop the class.",
            )
        rng.shuffle(members)
        n_val = max(1, round(len(members) * plan.split.validation_fraction))
        n_test = max(1, round(len(members) * plan.split.test_fraction))
        splits["validation"] += members[:n_val]
        splits["test"] += members[n_val : n_val + n_test]
        splits["train"] += members[n_val + n_test :]
    if plan.task == "token_classification":
        _move_unseen_tags_to_train(splits)
    return splits


def _move_unseen_tags_to_train(splits: dict[str, list[Record]]) -> None:
    """A sentence whose tag train never shows is worth more in train than in scoring."""
    seen = {tag for record in splits["train"] for tag in record["tags"]}
    for name in ("validation", "test"):
        keep: list[Record] = []
        for record in splits[name]:
            (keep if set(record["tags"]) <= seen else splits["train"]).append(record)
        splits[name] = keep


def _check_labels(splits: dict[str, list[Record]], plan: DeepPlan) -> None:
    empty = [name for name in SPLITS if not splits[name]]
    if empty:
        raise DatasetError(
            f"The {' and '.join(empty)} split(s) are empty.",
            next_step="Each of train, validation and test needs records.",
        )
    if plan.task not in ("image_classification", "text_classification", "object_detection"):
        return

    def labels(name: str) -> set[str]:
        found: set[str] = set()
        for record in splits[name]:
            found |= set(record["labels"]) if "labels" in record else {record["label"]}
        return found

    known = set(plan.labels)
    for name in SPLITS:
        missing = sorted(known - labels(name)) if name == "train" or plan.split.given else []
        unknown = sorted(labels(name) - known)
        if missing or unknown:
            what = f"{missing} missing from" if missing else f"{unknown} unknown to"
            raise DatasetError(
                f"Labels {what} the {name} split.",
                next_step="Every class needs examples in train, validation and test: add "
                "examples of these classes to that split, or remove the class everywhere.",
            )
