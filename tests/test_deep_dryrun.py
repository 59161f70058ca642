"""The dry-run proof of every template: rendered, run end to end in the local sandbox with a tiny
randomly initialised model (no download), saved, reloaded, and used by the local predict.

Needs the ``deep`` extra: skipped with the reason when it is missing, failed instead when
MLTRAINER_REQUIRE_EXTRAS=1 (CI). The runs go two at a time (the machine has two cores).
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_deep_layouts import chat_jsonl, coco, conll, image_folder, png, translation_csv

from mltrainer.state.errors import DatasetError, InvalidInput, NotFound
from mltrainer.state.settings import Settings
from mltrainer.tools.deep.dryrun import DryRunFailed, DryRunReport, dry_run
from mltrainer.tools.deep.layouts import detect_layout
from mltrainer.tools.deep.models import DeepLayout, DeepRequest
from mltrainer.tools.deep.planner import plan_deep
from mltrainer.tools.deep.predict import predict_folder
from mltrainer.tools.deep.prepare import prepare_input
from mltrainer.tools.deep.render import RenderedRun, render
from mltrainer.tools.deep.synthetic import write_synthetic_input

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command

EXTRA = (
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "seqeval",
    "sacrebleu",
    "rouge_score",
    "pycocotools",
)
INSTALL = "pip install torch==2.13.0 && pip install -e '.[deep]'"


def require_deep_extra() -> None:
    missing = [name for name in EXTRA if importlib.util.find_spec(name) is None]
    if not missing:
        return
    reason = f"the deep extra is missing ({', '.join(missing)}); install it: {INSTALL}"
    if os.environ.get("MLTRAINER_REQUIRE_EXTRAS") == "1":
        pytest.fail(f"MLTRAINER_REQUIRE_EXTRAS=1 but {reason}")
    pytest.skip(reason)


@dataclass
class Case:
    """One dry run: how its data is made, and the request that plans it."""

    make: Callable[[Path], DeepLayout | None]  # a fixture's layout, or None for synthetic data
    request: DeepRequest
    synthetic: DeepLayout | None = None


def synthetic(
    kind: str, task: str, classes: list[str] | None = None, **extra: object
) -> DeepLayout:
    return DeepLayout.model_validate(
        {
            "kind": kind,
            "tasks": [task],
            "path": "synthetic",
            "n_records": 16,
            "classes": classes or [],
            **extra,
        }
    )


KAGGLE = DeepRequest(runtime="kaggle")
CASES = {
    "image_classification": Case(
        lambda d: detect_layout(image_folder(d / "pets", per_class=6)), KAGGLE
    ),
    "image_regression": Case(lambda d: None, KAGGLE, synthetic("image_table", "image_regression")),
    "object_detection": Case(lambda d: detect_layout(coco(d / "boxes", n_images=12)), KAGGLE),
    "text_classification": Case(
        lambda d: None,
        KAGGLE,
        synthetic("text_table", "text_classification", ["neg", "pos"], language="en"),
    ),
    "token_classification": Case(lambda d: _conll(d), KAGGLE),
    "summarization": Case(
        lambda d: None,
        KAGGLE,
        synthetic("text_pair", "summarization", language="en", text_words=40, target_words=10),
    ),
    "translation": Case(lambda d: detect_layout(translation_csv(d / "pairs.csv")), KAGGLE),
    "text_generation": Case(lambda d: detect_layout(chat_jsonl(d / "chat.jsonl", rows=12)), KAGGLE),
    "text_generation_full": Case(
        lambda d: None,
        DeepRequest(runtime="modal", gpu="A10G", backbone="openai-community/gpt2", lora=False),
        synthetic("chat", "text_generation", language="en", text_words=20),
    ),
}


def _conll(folder: Path) -> DeepLayout:
    path = conll(folder / "ner.conll")
    path.write_text(path.read_text() * 6)
    return detect_layout(path)


def _render(name: str, case: Case, root: Path) -> RenderedRun:
    folder = root / name
    (folder / "source").mkdir(parents=True)
    layout = case.make(folder / "source")
    plan = plan_deep(layout or case.synthetic, case.request)  # type: ignore[arg-type]
    if layout is None:
        write_synthetic_input(plan, folder / "input")
    else:
        prepare_input(layout, plan, folder / "input")
    return render(plan, folder / "run", folder / "input")


def _broken(root: Path) -> RenderedRun:
    """A run whose test split is empty: the script stops, and the report says why."""
    run = _render("broken", CASES["text_classification"], root)
    (Path(run.input_dir or "") / "test.jsonl").write_text("")
    return run


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, DryRunReport]]:
    require_deep_extra()
    from mltrainer.sandbox.manager import create_manager

    home = tmp_path_factory.mktemp("deep-home")
    manager = create_manager(Settings(home=home))
    if manager.choice.backend is None:
        manager.close()
        pytest.skip(f"no sandbox here: {manager.choice.reason}")
    runs = {name: _render(name, case, home / "runs") for name, case in CASES.items()}
    runs["broken"] = _broken(home / "runs")
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            reports = dict(
                zip(runs, pool.map(lambda run: dry_run(run, manager), runs.values()), strict=True)
            )
        yield reports
    finally:
        manager.close()


METRICS = {
    "image_classification": {"accuracy", "f1_macro"},
    "image_regression": {"rmse", "mae", "r2"},
    "object_detection": {"loss", "map", "map_50", "map_75"},
    "text_classification": {"accuracy", "f1_macro"},
    "token_classification": {"f1", "precision", "recall"},
    "summarization": {"rouge1", "rouge2", "rougeL"},
    "translation": {"bleu", "chrf"},
    "text_generation": {"loss", "perplexity"},
    "text_generation_full": {"loss", "perplexity"},
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_template_passes_its_dry_run_and_writes_the_model_folder(
    dry_runs: dict[str, DryRunReport], name: str
) -> None:
    report = dry_runs[name]
    assert report.ok, report.stderr_tail
    assert report.missing == []
    assert METRICS[name] <= report.test_metrics.keys()
    assert 1 <= report.reload_predictions <= 4  # the first (up to) four test records
    folder = Path(report.model_dir or "")
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["dry_run"] is True and metrics["history"], "one row per evaluation"
    assert (folder / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Dry run" in (folder / "README.md").read_text()
    assert not (folder / "checkpoints").exists()


def test_lora_leaves_its_adapter_beside_the_merged_weights(
    dry_runs: dict[str, DryRunReport],
) -> None:
    lora = Path(dry_runs["text_generation"].model_dir or "")
    full = Path(dry_runs["text_generation_full"].model_dir or "")
    assert (lora / "adapter" / "adapter_model.safetensors").is_file()
    assert not (full / "adapter").exists()
    assert json.loads((full / "config.json").read_text())["model_type"] == "gpt2"


def test_a_failing_script_is_reported_and_refused_before_submission(
    dry_runs: dict[str, DryRunReport],
) -> None:
    report = dry_runs["broken"]
    assert not report.ok and report.status == "error"
    assert "test.jsonl holds no records" in report.stderr_tail
    with pytest.raises(DryRunFailed, match=r"failed its dry run.*Nothing was submitted"):
        report.raise_for_failure()


def new_images(folder: Path, n: int = 3) -> list[str]:
    return [str(png(folder / f"new{i}.png", (30 * i, 90, 160), size=(36, 28))) for i in range(n)]


def test_predict_classifies_new_images_with_the_models_label_set(
    dry_runs: dict[str, DryRunReport], tmp_path: Path
) -> None:
    found = predict_folder(
        Path(dry_runs["image_classification"].model_dir or ""), new_images(tmp_path)
    )
    assert found.labels == ["cat", "dog"] and len(found.predictions) == 3
    for prediction in found.predictions:
        assert prediction.label in found.labels and prediction.scores is not None
        assert set(prediction.scores) == {"cat", "dog"}
        assert sum(prediction.scores.values()) == pytest.approx(1.0, abs=1e-4)


def test_predict_gives_a_number_per_image_for_regression(
    dry_runs: dict[str, DryRunReport], tmp_path: Path
) -> None:
    found = predict_folder(
        Path(dry_runs["image_regression"].model_dir or ""), new_images(tmp_path, 2)
    )
    assert found.labels == [] and [type(p.value) for p in found.predictions] == [float, float]


def test_predict_finds_boxes_with_known_labels(
    dry_runs: dict[str, DryRunReport], tmp_path: Path
) -> None:
    found = predict_folder(
        Path(dry_runs["object_detection"].model_dir or ""), new_images(tmp_path), threshold=0.0
    )
    assert len(found.predictions) == 3
    for prediction in found.predictions:
        assert prediction.boxes, "threshold 0 keeps every query's box"
        assert all(box.label in found.labels and len(box.box) == 4 for box in prediction.boxes)


def test_predict_labels_texts_and_tags_every_word(dry_runs: dict[str, DryRunReport]) -> None:
    texts = predict_folder(
        Path(dry_runs["text_classification"].model_dir or ""), ["a cat runs", "blue"]
    )
    assert [p.label in ("neg", "pos") for p in texts.predictions] == [True, True]
    tags = predict_folder(
        Path(dry_runs["token_classification"].model_dir or ""), ["Peter rejects EU", "EU"]
    )
    assert [len(p.tags or []) for p in tags.predictions] == [3, 1]
    assert {t for p in tags.predictions for t in p.tags or []} <= set(tags.labels)


@pytest.mark.parametrize(
    "name", ["summarization", "translation", "text_generation", "text_generation_full"]
)
def test_predict_generates_one_text_per_input(dry_runs: dict[str, DryRunReport], name: str) -> None:
    found = predict_folder(
        Path(dry_runs[name].model_dir or ""), ["the cat sat on the mat", "hello"], max_new_tokens=5
    )
    assert [type(p.text) for p in found.predictions] == [str, str]


def test_predict_refuses_bad_inputs(dry_runs: dict[str, DryRunReport], tmp_path: Path) -> None:
    images = Path(dry_runs["image_classification"].model_dir or "")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n nothing")
    with pytest.raises(DatasetError, match=r"do not decode: broken.png"):
        predict_folder(images, [str(broken)])
    with pytest.raises(NotFound, match="not found"):
        predict_folder(images, [str(tmp_path / "absent.png")])
    with pytest.raises(InvalidInput, match="non-empty text"):
        predict_folder(Path(dry_runs["text_classification"].model_dir or ""), ["ok", "  "])
    with pytest.raises(NotFound, match="not a model folder"):
        predict_folder(tmp_path, ["text"])


def tiny_run(tmp_path: Path, model_type: str = "vit") -> tuple[object, object]:
    """A script's Run and a tiny model, built in this process as the templates build them."""
    require_deep_extra()
    from mltrainer.tools.deep.templates import deep_common, deep_tiny

    config = {"selection_metric": "f1_macro", "selection_greater_is_better": True}
    run = deep_common.Run(
        config={**config, "early_stopping_patience": 2},
        data=tmp_path,
        output=tmp_path,
        dry_run=True,
    )
    from transformers import AutoModelForImageClassification

    model = AutoModelForImageClassification.from_config(deep_tiny.config(model_type, num_labels=2))
    return run, model


def test_the_best_epochs_weights_are_restored_not_the_last(tmp_path: Path) -> None:
    """Regression: the Trainer's load_best_model_at_end reloaded ViT checkpoints without
    transformers 5's key conversion and silently kept the last weights."""
    import torch
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from mltrainer.tools.deep.templates.deep_common import Watch

    run, model = tiny_run(tmp_path)
    watch = Watch(run, model)  # type: ignore[arg-type]
    args, control = TrainingArguments(output_dir=str(tmp_path), report_to=[]), TrainerControl()
    first = model.classifier.weight.detach().clone()  # type: ignore[attr-defined]
    for epoch, score in ((1, 0.8), (2, 0.5), (3, 0.4)):
        watch.on_evaluate(
            args, TrainerState(epoch=epoch), control, metrics={"eval_f1_macro": score}
        )
        with torch.no_grad():
            model.classifier.weight.add_(1.0)  # type: ignore[attr-defined]
    assert control.should_training_stop  # two evaluations without improvement: patience 2
    watch.on_train_end(args, TrainerState(), control)
    assert torch.equal(model.classifier.weight, first)  # type: ignore[attr-defined]
    assert (watch.best_epoch, len(watch.rows)) == (1, 3)


def test_a_model_folder_whose_weights_do_not_all_load_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from mltrainer.tools.deep.templates import deep_infer

    _, model = tiny_run(tmp_path)
    model.save_pretrained(tmp_path / "model")  # type: ignore[attr-defined]
    weights = tmp_path / "model" / "model.safetensors"
    tensors = load_file(weights)
    renamed = {key.replace("classifier", "head"): value for key, value in tensors.items()}
    save_file(renamed, weights, metadata={"format": "pt"})
    from transformers import AutoModelForImageClassification

    with pytest.raises(ValueError, match="does not reload whole"):
        deep_infer.load(AutoModelForImageClassification, tmp_path / "model")
