"""The deep-learning planner: typed plans for a spread of data sizes and GPUs, each choice with
its reason, and the refusals (wrong backbone class, a GPU too small, no GPU locally)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mltrainer.state.errors import InvalidInput
from mltrainer.tools.deep import catalogue
from mltrainer.tools.deep.models import DeepLayout, DeepRequest, LanguagePair
from mltrainer.tools.deep.planner import plan_deep


def text_layout(n: int = 2_000, words: int = 40, language: str = "en") -> DeepLayout:
    return DeepLayout(
        kind="text_table",
        tasks=["text_classification"],
        path="reviews.csv",
        n_records=n,
        classes=["neg", "pos"],
        language=language,
        text_words=words,
    )


def chat_layout(n: int = 2_000, words: int = 300) -> DeepLayout:
    return DeepLayout(
        kind="chat",
        tasks=["text_generation"],
        path="chat.jsonl",
        n_records=n,
        language="en",
        text_words=words,
    )


def pair_layout(source: str, target: str, tasks: list[str]) -> DeepLayout:
    return DeepLayout(
        kind="text_pair",
        tasks=tasks,  # type: ignore[arg-type]
        path="pairs.csv",
        n_records=1_000,
        language=source,
        languages=LanguagePair(source=source, target=target),
        text_words=30,
        target_words=12,
    )


def test_the_plan_is_typed_and_every_choice_has_a_reason() -> None:
    plan = plan_deep(text_layout(), DeepRequest(runtime="kaggle"))
    assert (plan.task, plan.family, plan.template) == (
        "text_classification",
        "text",
        "train_text.py",
    )
    assert plan.backbone == "distilbert/distilbert-base-uncased"
    assert plan.labels == ["neg", "pos"]
    assert (plan.metric, plan.selection_metric) == ("f1_macro", "f1_macro")
    stages = {d.stage for d in plan.decisions}
    assert {
        "gpu",
        "backbone",
        "max_length",
        "epochs",
        "batch_size",
        "learning_rate",
        "precision",
    } <= stages
    assert all(d.reason for d in plan.decisions)
    assert plan.split.validation_fraction > 0 and plan.split.test_fraction > 0


def test_a_t4_gets_a_smaller_batch_than_an_a100_and_keeps_the_effective_batch() -> None:
    layout = text_layout(words=350)
    request = {"runtime": "modal", "backbone": "FacebookAI/roberta-large"}
    t4 = plan_deep(layout, DeepRequest(gpu="T4", **request))
    a100 = plan_deep(layout, DeepRequest(gpu="A100-80GB", **request))
    assert t4.batch_size < a100.batch_size
    assert t4.batch_size * t4.grad_accum == a100.batch_size * a100.grad_accum
    assert (t4.precision, a100.precision) == ("fp16", "bf16")
    batch = next(d for d in t4.decisions if d.stage == "batch_size")
    assert "would not fit" in batch.reason and "T4" in batch.reason
    assert t4.estimated_memory_gb is not None and t4.estimated_memory_gb <= 0.9 * 16


def test_text_generation_uses_lora_by_default_with_its_reason() -> None:
    plan = plan_deep(chat_layout(), DeepRequest(runtime="kaggle"))
    assert plan.family == "causal" and plan.lora is not None
    assert (plan.lora.rank, plan.lora.alpha, plan.learning_rate) == (8, 16, 2e-4)
    assert any(d.stage == "lora" and "adapters" in d.reason for d in plan.decisions)
    assert "peft" in plan.requirements


def test_a_large_model_without_lora_on_a_small_gpu_is_refused_with_the_reason() -> None:
    request = DeepRequest(
        runtime="modal", gpu="T4", backbone="Qwen/Qwen2.5-7B-Instruct", lora=False
    )
    with pytest.raises(InvalidInput) as refused:
        plan_deep(chat_layout(), request)
    message = str(refused.value)
    assert "every weight trained (no LoRA)" in message and "T4's 16 GB" in message
    assert "lora=True" in message


def test_a_gpu_too_small_even_with_lora_is_refused_and_a_larger_one_named() -> None:
    request = DeepRequest(runtime="modal", gpu="T4", backbone="Qwen/Qwen2.5-7B-Instruct")
    with pytest.raises(InvalidInput, match=r"with LoRA at batch size 1, more than T4's 16 GB.*L4"):
        plan_deep(chat_layout(), request)
    plan = plan_deep(chat_layout(), request.model_copy(update={"gpu": "A100-40GB"}))
    assert plan.lora is not None and plan.lora.rank == 16


def test_a_backbone_not_of_the_tasks_architecture_class_is_refused() -> None:
    request = DeepRequest(runtime="kaggle", backbone="google/vit-base-patch16-224-in21k")
    with pytest.raises(
        InvalidInput, match=r"is a vision model \(vit\); text_classification needs an? encoder"
    ):
        plan_deep(text_layout(), request)


def test_a_backbone_whose_architecture_cannot_be_told_is_refused() -> None:
    with pytest.raises(InvalidInput, match="Cannot tell the architecture of backbone 'acme/magic'"):
        plan_deep(text_layout(), DeepRequest(runtime="kaggle", backbone="acme/magic"))


def test_an_unlisted_backbone_is_placed_by_its_name_or_its_local_config(tmp_path: Path) -> None:
    named = plan_deep(
        text_layout(), DeepRequest(runtime="kaggle", backbone="someone/bert-mini-finetuned")
    )
    assert (named.model_type, named.arch_class) == ("bert", "encoder")
    folder = tmp_path / "my-checkpoint"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    local = plan_deep(text_layout(), DeepRequest(runtime="kaggle", backbone=str(folder)))
    assert local.model_type == "roberta"


def test_an_architecture_without_a_proven_dry_run_is_not_sent() -> None:
    with pytest.raises(InvalidInput, match="no proven dry run yet"):
        plan_deep(
            text_layout(), DeepRequest(runtime="kaggle", backbone="microsoft/deberta-v3-base")
        )


def test_runtime_local_without_a_gpu_is_refused_and_with_one_is_planned() -> None:
    with pytest.raises(InvalidInput, match=r"needs a CUDA GPU.*runtime='modal'"):
        plan_deep(text_layout(), DeepRequest(runtime="local"))
    plan = plan_deep(text_layout(), DeepRequest(runtime="local", local_gpu_memory_gb=24))
    assert (plan.gpu, plan.gpu_memory_gb, plan.precision) == ("local GPU", 24, "fp16")


def test_an_unknown_gpu_lists_the_catalogue_and_its_date() -> None:
    taken = catalogue.gpus().taken
    with pytest.raises(InvalidInput, match=rf"Unknown GPU 'K80'.*T4.*catalogue of {taken}"):
        plan_deep(text_layout(), DeepRequest(runtime="modal", gpu="K80"))


def test_the_gpu_catalogue_is_one_dated_data_file() -> None:
    found = catalogue.gpus()
    assert found.taken[:2] == "20" and len(found.taken) == 10
    assert {"T4", "L4", "A100-80GB", "H100"} <= found.gpus.keys()
    assert all(g.memory_gb > 0 for g in found.gpus.values())
    plan = plan_deep(text_layout(), DeepRequest(runtime="kaggle"))
    assert plan.gpu == found.default_gpu["kaggle"]
    assert found.taken in next(d.reason for d in plan.decisions if d.stage == "gpu")


def test_a_task_the_layout_does_not_fit_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"task='translation' does not fit.*text_classification"):
        plan_deep(text_layout(), DeepRequest(task="translation", runtime="kaggle"))


def test_lora_is_refused_for_a_task_that_is_not_text_generation() -> None:
    with pytest.raises(InvalidInput, match="LoRA is offered for text_generation only"):
        plan_deep(text_layout(), DeepRequest(runtime="kaggle", lora=True))


def test_german_text_gets_a_multilingual_backbone() -> None:
    plan = plan_deep(text_layout(language="de"), DeepRequest(runtime="kaggle"))
    assert plan.backbone in {b.name for b in catalogue.BACKBONES if b.multilingual}
    assert "multilingual" in next(d.reason for d in plan.decisions if d.stage == "backbone")


def test_more_data_earns_a_larger_backbone_and_fewer_epochs() -> None:
    small = plan_deep(text_layout(n=500), DeepRequest(runtime="modal", gpu="A100-80GB"))
    large = plan_deep(text_layout(n=60_000), DeepRequest(runtime="modal", gpu="A100-80GB"))
    assert small.params_m < large.params_m
    assert small.epochs > large.epochs


@pytest.mark.parametrize(
    ("pair", "backbone", "prefix"),
    [
        (("en", "de"), "Helsinki-NLP/opus-mt-en-de", ""),
        (("fi", "sv"), "google/mt5-small", ""),
    ],
)
def test_translation_picks_a_checkpoint_for_the_language_pair(
    pair: tuple[str, str], backbone: str, prefix: str
) -> None:
    plan = plan_deep(pair_layout(*pair, ["translation"]), DeepRequest(runtime="kaggle"))
    assert (plan.backbone, plan.prefix, plan.metric) == (backbone, prefix, "bleu")
    assert plan.max_target_length is not None and plan.num_beams == 4


def test_t5_names_the_task_in_its_prefix() -> None:
    plan = plan_deep(pair_layout("en", "en", ["summarization"]), DeepRequest(runtime="kaggle"))
    assert (plan.backbone, plan.prefix, plan.metric) == (
        "google-t5/t5-small",
        "summarize: ",
        "rougeL",
    )


def test_image_and_detection_plans_take_the_backbones_image_size() -> None:
    images = DeepLayout(
        kind="image_folder",
        tasks=["image_classification"],
        path="x",
        n_records=300,
        classes=["a", "b"],
    )
    boxes = DeepLayout(
        kind="coco", tasks=["object_detection"], path="x", n_records=300, classes=["a"]
    )
    image_plan = plan_deep(images, DeepRequest(runtime="kaggle"))
    box_plan = plan_deep(boxes, DeepRequest(runtime="kaggle"))
    assert (image_plan.image_size, image_plan.metric) == (224, "f1_macro")
    assert (box_plan.backbone, box_plan.metric, box_plan.selection_metric) == (
        "hustvl/yolos-tiny",
        "map",
        "loss",
    )


def test_epochs_named_by_the_caller_are_kept() -> None:
    plan = plan_deep(text_layout(), DeepRequest(runtime="kaggle", epochs=7))
    assert plan.epochs == 7
    assert "named by the caller" in next(d.reason for d in plan.decisions if d.stage == "epochs")


def test_this_machine_without_a_cuda_gpu_reports_none() -> None:
    from mltrainer.tools.deep.memory import local_gpu_memory_gb

    found = local_gpu_memory_gb()
    torch = pytest.importorskip("torch")
    assert (found is None) == (not torch.cuda.is_available())
