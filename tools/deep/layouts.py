"""Recognise a deep-learning dataset: the one entry point for the profiler and ``task="auto"``.

``detect_layout(path)`` takes a file or a folder; ``detect_frame_layout(frame)`` a table
already loaded. Both return a typed ``DeepLayout`` (task candidates, the parts and where they
are, classes, sizes, problems) or raise a ``DatasetError`` that says what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mltrainer.state.errors import DatasetError
from mltrainer.tools.deep import frames, images
from mltrainer.tools.deep.language import detect_language
from mltrainer.tools.deep.models import DeepLayout, LayoutColumns

if TYPE_CHECKING:
    import pandas as pd

CONLL_SUFFIXES = (".conll", ".conllu", ".iob", ".iob2", ".bio", ".txt")
TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".parquet", ".pq", ".json", ".jsonl", ".ndjson")
FOLDER_EXPECTED = (
    "one folder per class of images (ROOT/<class>/<image>, optionally under train/validation/"
    "test folders), a COCO annotation JSON with its images, a CoNLL file, or one table file"
)


def detect_layout(path: Path) -> DeepLayout:
    """The layout of a dataset file or folder."""
    if not path.exists():
        raise DatasetError(f"{path} does not exist.", next_step="Check the path.")
    if path.is_dir():
        return _folder(path)
    if images.is_coco(path):
        return images.coco_layout(path)
    if path.suffix.lower() in CONLL_SUFFIXES:
        return conll_layout(path)
    return frames.detect_frame(frames.read_table(path), str(path))


def detect_frame_layout(frame: pd.DataFrame, name: str = "the table") -> DeepLayout:
    """The layout of a loaded table (a copy is analysed: the frame is left as it was)."""
    return frames.detect_frame(frame.copy(), name)


def _folder(root: Path) -> DeepLayout:
    # Annotations first: a COCO set is often a JSON file beside an images/ folder.
    coco = sorted(p for p in [*root.glob("*.json"), *root.glob("*/*.json")] if images.is_coco(p))
    if len(coco) == 1:
        return images.coco_layout(coco[0])
    found = None if coco else images.image_folder(root)
    if found is not None:
        return found
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    data = [p for p in files if p.suffix.lower() in TABLE_SUFFIXES + CONLL_SUFFIXES]
    if len(data) == 1:
        return detect_layout(data[0])
    shown = ", ".join(p.name for p in (coco or data or files)[:5]) or "nothing usable"
    if len(coco) > 1:
        shown = f"{len(coco)} COCO annotation files: {shown}"
    raise DatasetError(
        f"{root} does not have one recognisable layout (found: {shown}).",
        next_step=f"Expected {FOLDER_EXPECTED}; or pass one of its files directly.",
    )


def read_conll(path: Path) -> list[tuple[list[str], list[str]]]:
    """(words, tags) per sentence: the first column is the word, the last its tag."""
    sentences: list[tuple[list[str], list[str]]] = []
    words: list[str] = []
    tags: list[str] = []
    with path.open(encoding="utf-8", errors="strict") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts or parts[0] == "-DOCSTART-":
                if words:
                    sentences.append((words, tags))
                words, tags = [], []
                continue
            if len(parts) < 2:
                raise DatasetError(
                    f"{path.name} line {number} has one column ({line.strip()[:60]!r}).",
                    next_step="CoNLL lines hold a word and its tag separated by whitespace, "
                    "with a blank line between sentences.",
                )
            words.append(parts[0])
            tags.append(parts[-1])
    if words:
        sentences.append((words, tags))
    return sentences


def conll_layout(path: Path) -> DeepLayout:
    try:
        sentences = read_conll(path)
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{path.name} is not UTF-8 text.", next_step="Save it as UTF-8."
        ) from exc
    if not sentences:
        raise DatasetError(f"{path.name} holds no sentences.", next_step="Pass a CoNLL file.")
    classes = sorted({tag for _, tags in sentences for tag in tags})
    return DeepLayout(
        kind="conll",
        tasks=["token_classification"],
        path=str(path),
        files=[str(path)],
        columns=LayoutColumns(tokens="0", tags="-1"),
        classes=classes,
        n_records=len(sentences),
        language=detect_language(" ".join(words) for words, _ in sentences[:500]),
        text_words=max(len(words) for words, _ in sentences),
    )
