"""Image layouts on disk: a folder per class (optionally under train/validation/test folders),
and COCO-style detection annotations. Every image that is used is checked to decode."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from mltrainer.state.errors import DatasetError
from mltrainer.tools.deep.frames import IMAGE_SUFFIXES
from mltrainer.tools.deep.models import DeepLayout

SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "validation",
    "valid": "validation",
    "validation": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
}
IGNORED = {".ds_store", "thumbs.db", "readme.md", "readme.txt", "license", "license.txt"}
CHECK_SAMPLE = 64


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def decode_errors(paths: list[Path]) -> list[str]:
    """'name: reason' for each image that does not decode (the whole file is read)."""
    from PIL import Image, UnidentifiedImageError

    failed = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.load()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            failed.append(f"{path.name}: {type(exc).__name__}: {exc}"[:200])
    return failed


def check_decodes(paths: list[Path], where: str) -> None:
    failed = decode_errors(paths)
    if failed:
        raise DatasetError(
            f"{len(failed)} image(s) in {where} do not decode: {'; '.join(failed[:5])}.",
            next_step="Remove or replace these files (PNG, JPEG, BMP, GIF, WebP or TIFF).",
        )


def median_size(paths: list[Path]) -> tuple[int, int] | None:
    from PIL import Image

    sizes = []
    for path in paths[:CHECK_SAMPLE]:
        with Image.open(path) as image:
            sizes.append(image.size)
    if not sizes:
        return None
    return int(statistics.median(w for w, _ in sizes)), int(statistics.median(h for _, h in sizes))


def class_images(root: Path) -> dict[str, list[Path]]:
    """{class: images} of a folder holding one folder per class; mixed layouts are refused."""
    entries = [e for e in sorted(root.iterdir()) if e.name.lower() not in IGNORED]
    loose = [e.name for e in entries if e.is_file() and e.suffix.lower() in IMAGE_SUFFIXES]
    folders = [e for e in entries if e.is_dir() and not e.name.startswith(".")]
    if loose and folders:
        raise DatasetError(
            f"{root} mixes images ({', '.join(loose[:3])}) with class folders "
            f"({', '.join(f.name for f in folders[:3])}).",
            next_step="Put every image in the folder of its class: ROOT/<class>/<image>.",
        )
    classes: dict[str, list[Path]] = {}
    for folder in folders:
        nested = [e.name for e in folder.iterdir() if e.is_dir() and not e.name.startswith(".")]
        if nested:
            raise DatasetError(
                f"Class folder '{folder.name}' holds folders ({', '.join(nested[:3])}).",
                next_step="Use one level of class folders: ROOT/<class>/<image>, or "
                "ROOT/<split>/<class>/<image> with split train, validation and test.",
            )
        classes[folder.name] = sorted(p for p in folder.iterdir() if is_image(p))
    return classes


def image_folder(root: Path) -> DeepLayout | None:
    """A folder per class (or per split, then per class); None when the folder is not one."""
    subdirs = [e for e in root.iterdir() if e.is_dir() and not e.name.startswith(".")]
    if not subdirs:
        return None
    split_dirs = {SPLIT_NAMES.get(d.name.lower()): d for d in subdirs}
    pre_split = None not in split_dirs and "train" in split_dirs
    roots = {split: d for split, d in split_dirs.items() if split} if pre_split else {"": root}
    by_split = {split: class_images(folder) for split, folder in roots.items()}
    classes = sorted({name for found in by_split.values() for name in found})
    images = [p for found in by_split.values() for paths in found.values() for p in paths]
    if not images:
        return None
    if len(classes) < 2:
        raise DatasetError(
            f"{root} has images of one class only ({classes[0]}).",
            next_step="An image classification needs a folder for each of two or more classes.",
        )
    empty = [
        f"{s or 'root'}/{c}" for s, found in by_split.items() for c, p in found.items() if not p
    ]
    check_decodes(images[:: max(1, len(images) // CHECK_SAMPLE)][:CHECK_SAMPLE], str(root))
    splits = (
        {s: sum(map(len, found.values())) for s, found in by_split.items()} if pre_split else {}
    )
    return DeepLayout(
        kind="image_folder",
        tasks=["image_classification"],
        path=str(root),
        classes=classes,
        n_records=len(images),
        splits=splits,
        image_size=median_size(images),
        problems=[f"Empty class folders: {', '.join(empty)}."] if empty else [],
    )


def is_coco(path: Path) -> bool:
    if path.suffix.lower() != ".json" or path.stat().st_size > 512 * 1024 * 1024:
        return False
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return False
    return '"annotations"' in head or ('"images"' in head and '"categories"' in head)


def load_coco(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise DatasetError(
            f"{path.name} is not valid JSON: {exc}", next_step="Pass a COCO annotation file."
        ) from exc
    missing = [key for key in ("images", "annotations", "categories") if key not in data]
    if not isinstance(data, dict) or missing:
        raise DatasetError(
            f"{path.name} is not a COCO annotation file (missing {', '.join(missing)}).",
            next_step="COCO detection files hold 'images', 'annotations' and 'categories'.",
        )
    return data


def coco_image_dir(annotations: Path, data: dict[str, Any]) -> Path:
    """Where the annotated images are: beside the file, or in an images/ folder near it."""
    first = str(data["images"][0]["file_name"]) if data["images"] else ""
    for folder in (annotations.parent, annotations.parent / "images", annotations.parent.parent):
        if first and (folder / first).is_file():
            return folder
    raise DatasetError(
        f"The images of {annotations.name} (e.g. {first!r}) are not beside it or in images/.",
        next_step="Put the image files beside the annotation file or in an images/ folder.",
    )


def coco_layout(path: Path) -> DeepLayout:
    data = load_coco(path)
    categories = {int(c["id"]): str(c["name"]) for c in data["categories"]}
    images = {int(i["id"]): str(i["file_name"]) for i in data["images"]}
    for number, note in enumerate(data["annotations"]):
        bbox = note.get("bbox")
        valid = isinstance(bbox, list) and len(bbox) == 4 and bbox[2] > 0 and bbox[3] > 0
        if (
            not valid
            or note.get("image_id") not in images
            or note.get("category_id") not in categories
        ):
            raise DatasetError(
                f"{path.name}: annotation {number} is malformed ({json.dumps(note)[:160]}).",
                next_step="Each annotation needs an image_id and category_id that exist and a "
                "bbox [x, y, width, height] with positive width and height.",
            )
    if not data["annotations"]:
        raise DatasetError(f"{path.name} has no annotations.", next_step="Annotate some boxes.")
    folder = coco_image_dir(path, data)
    files = [folder / name for name in images.values()]
    absent = [f.name for f in files if not f.is_file()]
    if absent:
        raise DatasetError(
            f"{len(absent)} image(s) named in {path.name} are missing: {', '.join(absent[:5])}.",
            next_step="Put every annotated image in the images folder, or drop its entry.",
        )
    check_decodes(files[:CHECK_SAMPLE], str(folder))
    unused = set(categories) - {int(a["category_id"]) for a in data["annotations"]}
    problems = []
    if unused:
        problems.append(f"Categories without any box: {sorted(categories[c] for c in unused)}.")
    return DeepLayout(
        kind="coco",
        tasks=["object_detection"],
        path=str(path),
        files=[str(path)],
        classes=[categories[c] for c in sorted(categories) if c not in unused],
        n_records=len(images),
        image_size=median_size(files),
        problems=problems,
    )
