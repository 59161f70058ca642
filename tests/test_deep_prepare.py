"""From a recognised dataset to a rendered run folder: the input splits the scripts read, the
labels every split needs, images that fail to decode, and the script with its config.json.
No torch needed."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pandas as pd
import pytest
from test_deep_layouts import chat_jsonl, coco, conll, image_folder, png

from mltrainer.state.errors import DatasetError
from mltrainer.tools.deep.layouts import detect_layout
from mltrainer.tools.deep.models import DeepRequest, ScriptConfig
from mltrainer.tools.deep.planner import plan_deep
from mltrainer.tools.deep.prepare import prepare_input
from mltrainer.tools.deep.render import render, template_text

KAGGLE = DeepRequest(runtime="kaggle")


def read_split(folder: Path, split: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines()]


def test_an_image_folder_becomes_stratified_splits_with_every_class_in_each(tmp_path: Path) -> None:
    layout = detect_layout(image_folder(tmp_path / "pets", per_class=10))
    plan = plan_deep(layout, KAGGLE)
    counts = prepare_input(layout, plan, tmp_path / "input")
    assert counts == {"train": 12, "validation": 4, "test": 4}
    for split in counts:
        records = read_split(tmp_path / "input", split)
        assert {r["label"] for r in records} == {"cat", "dog"}
        assert all((tmp_path / "input" / str(r["image"])).is_file() for r in records)


def test_given_splits_are_kept_and_a_class_missing_from_one_is_refused(tmp_path: Path) -> None:
    for split in ("train", "val", "test"):
        image_folder(tmp_path / "pets" / split, per_class=2)
    layout = detect_layout(tmp_path / "pets")
    plan = plan_deep(layout, KAGGLE)
    assert plan.split.given
    assert prepare_input(layout, plan, tmp_path / "input") == {
        "train": 4,
        "validation": 4,
        "test": 4,
    }
    for path in (tmp_path / "pets" / "test" / "dog").iterdir():
        path.unlink()
    (tmp_path / "pets" / "test" / "dog").rmdir()
    layout = detect_layout(tmp_path / "pets")
    with pytest.raises(DatasetError, match=r"Labels \['dog'\] missing from the test split"):
        prepare_input(layout, plan_deep(layout, KAGGLE), tmp_path / "input2")


def test_a_class_too_small_to_reach_every_split_is_refused(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "pets", per_class=6)
    for path in list((root / "dog").iterdir())[2:]:
        path.unlink()
    layout = detect_layout(root)
    with pytest.raises(DatasetError, match=r"Class 'dog' has 2 example\(s\)"):
        prepare_input(layout, plan_deep(layout, KAGGLE), tmp_path / "input")


def test_an_image_that_fails_to_decode_is_refused_before_anything_runs(tmp_path: Path) -> None:
    for i in range(9):
        png(tmp_path / "img" / f"{i}.png")
    (tmp_path / "img" / "5.png").write_bytes(b"GIF89a truncated")
    frame = pd.DataFrame({"path": [f"img/{i}.png" for i in range(9)], "label": ["a", "b", "c"] * 3})
    frame.to_csv(tmp_path / "labels.csv", index=False)
    layout = detect_layout(tmp_path / "labels.csv")
    with pytest.raises(DatasetError, match=r"Image 5.png: .* does not decode"):
        prepare_input(layout, plan_deep(layout, KAGGLE), tmp_path / "input")


def test_an_image_path_outside_the_tables_folder_is_refused(tmp_path: Path) -> None:
    png(tmp_path / "secret.png")
    (tmp_path / "data").mkdir()
    frame = pd.DataFrame({"path": ["../secret.png"] * 3, "label": ["a", "b", "c"]})
    frame.to_csv(tmp_path / "data" / "labels.csv", index=False)
    layout = detect_layout(tmp_path / "data" / "labels.csv")
    with pytest.raises(DatasetError, match=r"is not a file under"):
        prepare_input(layout, plan_deep(layout, KAGGLE), tmp_path / "input")


def test_coco_conll_and_chat_become_the_records_their_scripts_read(tmp_path: Path) -> None:
    cases = {
        "coco": (coco(tmp_path / "boxes", n_images=12), {"image", "boxes", "labels"}),
        "conll": (conll(tmp_path / "ner.conll"), {"tokens", "tags"}),
        "chat": (chat_jsonl(tmp_path / "chat.jsonl"), {"messages"}),
    }
    for name, (path, keys) in cases.items():
        layout = detect_layout(path)
        if name == "conll":  # two sentences are too few for three splits
            path.write_text(path.read_text() * 6)
            layout = detect_layout(path)
        prepare_input(layout, plan_deep(layout, KAGGLE), tmp_path / name)
        records = [
            r for s in ("train", "validation", "test") for r in read_split(tmp_path / name, s)
        ]
        assert records and all(set(r) == keys for r in records), name


def test_instruction_rows_become_a_user_and_an_assistant_turn(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"instruction": ["add", "say"] * 5, "input": ["1 and 2", ""] * 5, "output": ["3", "hi"] * 5}
    )
    frame.to_csv(tmp_path / "alpaca.csv", index=False)
    layout = detect_layout(tmp_path / "alpaca.csv")
    prepare_input(layout, plan_deep(layout, KAGGLE), tmp_path / "input")
    records = [
        r for s in ("train", "validation", "test") for r in read_split(tmp_path / "input", s)
    ]
    turns = {json.dumps(r["messages"]) for r in records}
    assert (
        json.dumps(
            [{"role": "user", "content": "add\n\n1 and 2"}, {"role": "assistant", "content": "3"}]
        )
        in turns
    )


def test_render_ships_the_template_as_it_is_and_the_plan_as_data(tmp_path: Path) -> None:
    layout = detect_layout(image_folder(tmp_path / "pets", per_class=5))
    plan = plan_deep(layout, KAGGLE)
    run = render(plan, tmp_path / "run")
    folder = Path(run.folder)
    assert (folder / "train.py").read_text() == template_text("train_image.py")
    assert (folder / "deep_common.py").read_text() == template_text("deep_common.py")
    config = ScriptConfig.model_validate_json((folder / "config.json").read_text())
    assert (config.backbone, config.labels, config.batch_size) == (
        plan.backbone,
        ["cat", "dog"],
        plan.batch_size,
    )
    assert (folder / "requirements.txt").read_text().split() == plan.requirements
    mode = (folder / "config.json").stat().st_mode
    assert mode & stat.S_IROTH and (folder.stat().st_mode & stat.S_IXOTH)
