"""Deep-learning layouts: each recognised on a small generated dataset, and the malformed ones
refused with an error that says what was expected. No torch needed."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from mltrainer.state.errors import DatasetError
from mltrainer.tools.deep.language import detect_language
from mltrainer.tools.deep.layouts import detect_frame_layout, detect_layout

EN = ["the cat sat on the mat and it was happy", "this is a test of the system for you"]
DE = ["die Katze sitzt auf der Matte und ist nicht müde", "das ist ein Test mit dem System"]


def png(
    path: Path, colour: tuple[int, int, int] = (200, 10, 10), size: tuple[int, int] = (12, 10)
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def image_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog"), per_class: int = 4) -> Path:
    for c, name in enumerate(classes):
        for i in range(per_class):
            png(root / name / f"{i}.png", (40 * c, 100, 200 - 40 * c))
    return root


def coco(root: Path, n_images: int = 6) -> Path:
    images, notes = [], []
    for i in range(n_images):
        png(root / "images" / f"img{i}.png", size=(32, 24))
        images.append({"id": i + 1, "file_name": f"img{i}.png", "width": 32, "height": 24})
        notes.append(
            {"id": i + 1, "image_id": i + 1, "category_id": 1 + i % 2, "bbox": [2, 3, 10, 8]}
        )
    categories = [{"id": 1, "name": "ball"}, {"id": 2, "name": "box"}]
    path = root / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": notes, "categories": categories}))
    return path


def conll(path: Path) -> Path:
    path.write_text(
        "-DOCSTART- -X- O O\n\nEU NNP B-ORG\nrejects VBZ O\nGerman JJ B-MISC\n\n"
        "Peter NNP B-PER\nBlackburn NNP I-PER\n\n"
    )
    return path


def chat_jsonl(path: Path, rows: int = 6) -> Path:
    lines = [
        {
            "messages": [
                {"role": "user", "content": EN[i % 2]},
                {"role": "assistant", "content": "ok"},
            ]
        }
        for i in range(rows)
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def translation_csv(path: Path) -> Path:
    pd.DataFrame({"en": EN * 3, "de": DE * 3}).to_csv(path, index=False)
    return path


def test_an_image_folder_per_class_is_image_classification(tmp_path: Path) -> None:
    layout = detect_layout(image_folder(tmp_path / "pets"))
    assert (layout.kind, layout.tasks) == ("image_folder", ["image_classification"])
    assert layout.classes == ["cat", "dog"]
    assert (layout.n_records, layout.image_size) == (8, (12, 10))


def test_train_validation_test_folders_keep_their_split(tmp_path: Path) -> None:
    for split in ("train", "val", "test"):
        image_folder(tmp_path / "pets" / split, per_class=2)
    layout = detect_layout(tmp_path / "pets")
    assert layout.splits == {"train": 4, "validation": 4, "test": 4}


def test_images_beside_class_folders_are_a_mixed_layout(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "pets")
    png(root / "stray.png")
    with pytest.raises(DatasetError, match=r"mixes images .* with class folders.*ROOT/<class>"):
        detect_layout(root)


def test_one_class_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="one class only"):
        detect_layout(image_folder(tmp_path / "pets", classes=("cat",)))


def test_an_image_that_does_not_decode_is_named(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "pets")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(DatasetError, match=r"1 image\(s\) .* do not decode: broken.png"):
        detect_layout(root)


def test_coco_annotations_are_object_detection(tmp_path: Path) -> None:
    layout = detect_layout(coco(tmp_path / "boxes"))
    assert (layout.kind, layout.tasks) == ("coco", ["object_detection"])
    assert layout.classes == ["ball", "box"]
    assert layout.n_records == 6
    assert detect_layout(tmp_path / "boxes").kind == "coco"  # the folder holding it too


def test_a_malformed_coco_box_is_refused(tmp_path: Path) -> None:
    path = coco(tmp_path / "boxes")
    data = json.loads(path.read_text())
    data["annotations"][2]["bbox"] = [1, 1, 0, 5]
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"annotation 2 is malformed.*positive width"):
        detect_layout(path)


def test_coco_images_that_are_missing_are_listed(tmp_path: Path) -> None:
    path = coco(tmp_path / "boxes")
    (tmp_path / "boxes" / "images" / "img3.png").unlink()
    with pytest.raises(
        DatasetError, match=r"1 image\(s\) named in annotations.json are missing: img3"
    ):
        detect_layout(path)


def test_conll_text_is_token_classification(tmp_path: Path) -> None:
    layout = detect_layout(conll(tmp_path / "ner.conll"))
    assert (layout.kind, layout.tasks) == ("conll", ["token_classification"])
    assert layout.classes == ["B-MISC", "B-ORG", "B-PER", "I-PER", "O"]
    assert layout.n_records == 2


def test_a_conll_line_without_a_tag_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ner.txt"
    path.write_text("EU B-ORG\nrejects\n")
    with pytest.raises(DatasetError, match="line 2 has one column"):
        detect_layout(path)


def test_hub_tokens_and_integer_ner_tags_are_token_classification(tmp_path: Path) -> None:
    path = tmp_path / "ner.parquet"
    frame = pd.DataFrame({"tokens": [["EU", "rejects"], ["Peter"]], "ner_tags": [[3, 0], [1]]})
    frame.to_parquet(path)
    layout = detect_layout(path)
    assert layout.kind == "token_table"
    assert layout.classes == ["0", "1", "3"]


def test_tokens_and_tags_of_different_lengths_are_refused() -> None:
    frame = pd.DataFrame({"tokens": [["a", "b"]], "ner_tags": [["O"]]})
    with pytest.raises(DatasetError, match="row 0 has 2 tokens but 1 tags"):
        detect_frame_layout(frame)


def test_a_chat_jsonl_is_text_generation(tmp_path: Path) -> None:
    layout = detect_layout(chat_jsonl(tmp_path / "chat.jsonl"))
    assert (layout.kind, layout.tasks, layout.language) == ("chat", ["text_generation"], "en")
    assert layout.columns.messages == "messages"


def test_a_messages_column_that_is_not_a_chat_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps({"messages": "hello there"}) + "\n")
    with pytest.raises(DatasetError, match=r"row 0 is not a list of messages.*'role'"):
        detect_layout(path)


def test_instruction_and_response_columns_are_text_generation() -> None:
    frame = pd.DataFrame({"instruction": EN, "input": ["", "x"], "output": ["yes", "no"]})
    layout = detect_frame_layout(frame, "alpaca.csv")
    assert (layout.kind, layout.tasks) == ("instruction", ["text_generation"])
    assert (layout.columns.instruction, layout.columns.context, layout.columns.response) == (
        "instruction",
        "input",
        "output",
    )


def test_two_language_columns_are_a_translation_with_its_pair(tmp_path: Path) -> None:
    layout = detect_layout(translation_csv(tmp_path / "pairs.csv"))
    assert (layout.kind, layout.tasks) == ("text_pair", ["translation"])
    assert layout.languages is not None
    assert (layout.languages.source, layout.languages.target) == ("en", "de")


def test_a_hub_translation_dict_column_is_split_into_its_languages() -> None:
    frame = pd.DataFrame({"translation": [{"en": e, "de": d} for e, d in zip(EN, DE, strict=True)]})
    layout = detect_frame_layout(frame)
    assert layout.tasks == ["translation"]
    assert (layout.columns.source, layout.columns.target) == ("en", "de")
    assert list(frame.columns) == ["translation"]  # the caller's frame is left as it was


def test_document_and_summary_columns_are_summarization() -> None:
    frame = pd.DataFrame({"document": [" ".join(EN * 4)] * 3, "summary": ["a cat sat"] * 3})
    layout = detect_frame_layout(frame)
    assert layout.tasks == ["summarization"]
    assert layout.text_words is not None and layout.target_words is not None
    assert layout.target_words < layout.text_words


def test_a_text_and_a_label_column_are_text_classification() -> None:
    frame = pd.DataFrame({"review": EN * 3, "label": ["pos", "neg"] * 3})
    layout = detect_frame_layout(frame)
    assert (layout.tasks, layout.classes) == (["text_classification"], ["neg", "pos"])


def test_image_paths_with_a_numeric_target_are_image_regression(tmp_path: Path) -> None:
    for i in range(30):
        png(tmp_path / "img" / f"{i}.png")
    frame = pd.DataFrame({"path": [f"img/{i}.png" for i in range(30)], "age": range(30)})
    frame.to_csv(tmp_path / "ages.csv", index=False)
    layout = detect_layout(tmp_path / "ages.csv")
    assert (layout.kind, layout.tasks) == ("image_table", ["image_regression"])
    assert layout.columns.value == "age"


def test_image_bytes_with_a_label_are_image_classification(tmp_path: Path) -> None:
    data = png(tmp_path / "a.png").read_bytes()
    frame = pd.DataFrame({"image": [{"bytes": data, "path": None}] * 4, "label": [0, 1, 0, 1]})
    frame.to_parquet(tmp_path / "images.parquet")
    layout = detect_layout(tmp_path / "images.parquet")
    assert (layout.tasks, layout.classes) == (["image_classification"], ["0", "1"])


def test_an_image_column_without_a_label_says_what_to_add() -> None:
    frame = pd.DataFrame({"image": ["a.png", "b.jpg"], "width": [3, 4], "height": [5, 6]})
    with pytest.raises(DatasetError, match=r"no label or target column.*label"):
        detect_frame_layout(frame)


def test_a_plain_numeric_table_lists_the_layouts_expected() -> None:
    frame = pd.DataFrame({"x": [1, 2], "y": [3, 4]})
    with pytest.raises(
        DatasetError, match=r"does not have a deep-learning layout.*Expected a chat"
    ):
        detect_frame_layout(frame, "numbers.csv")


def test_a_folder_of_unrelated_files_says_what_was_expected(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    for name in ("a.csv", "b.csv"):
        (tmp_path / "data" / name).write_text("x\n1\n")
    with pytest.raises(
        DatasetError, match=r"does not have one recognisable layout.*one folder per class"
    ):
        detect_layout(tmp_path / "data")


@pytest.mark.parametrize(
    ("texts", "language"),
    [
        (EN, "en"),
        (DE, "de"),
        (["le chat est sur la table et il ne dort pas dans la maison"], "fr"),
        (["Привет, как дела? Всё хорошо"], "ru"),
        (["我爱北京天安门"], "zh"),
        (["これは日本語の文です"], "ja"),
        (["x y z"], "und"),
        ([], "und"),
    ],
)
def test_the_language_of_a_sample_is_told_without_a_download(
    texts: list[str], language: str
) -> None:
    assert detect_language(texts) == language
