"""The deep-learning planner: a layout and a request become a typed ``DeepPlan``.

Deterministic and offline. It picks the backbone (task, language, data size, GPU memory),
then the hyperparameters that fit the GPU, and writes every choice with its reason to
``decisions``. What cannot work is refused before anything is rendered or submitted.
"""

from __future__ import annotations

from mltrainer.state.errors import InvalidInput
from mltrainer.tools.deep import catalogue, memory
from mltrainer.tools.deep.catalogue import Backbone
from mltrainer.tools.deep.models import (
    ARCH_CLASS,
    FAMILY,
    TEMPLATE,
    DeepLayout,
    DeepPlan,
    DeepRequest,
    DeepTask,
    Family,
    LoraPlan,
    SplitPlan,
)

METRIC: dict[DeepTask, tuple[str, bool]] = {
    "image_classification": ("f1_macro", True),
    "image_regression": ("rmse", False),
    "object_detection": ("map", True),
    "text_classification": ("f1_macro", True),
    "token_classification": ("f1", True),
    "summarization": ("rougeL", True),
    "translation": ("bleu", True),
    "text_generation": ("perplexity", False),
}
LEARNING_RATE: dict[Family, tuple[float, str]] = {
    "image": (5e-5, "the usual rate for fine-tuning a pretrained vision backbone"),
    "detection": (5e-5, "a low rate: the detection head is new, the backbone pretrained"),
    "text": (3e-5, "within BERT's recommended 2e-5..5e-5 for fine-tuning encoders"),
    "seq2seq": (1e-4, "a common rate for fine-tuning T5/BART-sized encoder-decoders"),
    "causal": (2e-5, "full fine-tuning of a causal LM needs a low rate"),
}
REQUIREMENTS = {
    "image": ["scikit-learn"],
    "detection": ["pycocotools", "scipy"],
    "text": ["scikit-learn", "seqeval"],
    "seq2seq": ["rouge-score", "sacrebleu", "sentencepiece"],
    "causal": ["peft"],
}
BASE_REQUIREMENTS = ["torch", "transformers", "safetensors", "pillow", "matplotlib", "numpy"]
PIPELINE_TAG: dict[DeepTask, str] = {
    "image_classification": "image-classification",
    "image_regression": "image-classification",
    "object_detection": "object-detection",
    "text_classification": "text-classification",
    "token_classification": "token-classification",
    "summarization": "summarization",
    "translation": "translation",
    "text_generation": "text-generation",
}


def choose_task(layout: DeepLayout, request: DeepRequest) -> DeepTask:
    if request.task == "auto":
        return layout.tasks[0]
    if request.task not in layout.tasks:
        raise InvalidInput(
            f"task={request.task!r} does not fit this dataset: its layout ({layout.kind}) "
            f"fits {', '.join(layout.tasks)}.",
            next_step="Use task='auto', or pass a dataset laid out for this task.",
        )
    return request.task


def plan_deep(layout: DeepLayout, request: DeepRequest) -> DeepPlan:
    """The plan for one dataset and request; an InvalidInput when it cannot work."""
    task = choose_task(layout, request)
    family = FAMILY[task]
    device = memory.device_for(request)
    lora_wanted = request.lora if request.lora is not None else family == "causal"
    backbone, why = _backbone(task, family, layout, request, device, lora_wanted)
    metric, greater = METRIC[task]
    selection = (metric, greater) if family in ("image", "text", "seq2seq") else ("loss", False)
    plan = DeepPlan(
        task=task,
        family=family,
        template=TEMPLATE[family],
        backbone=backbone.name,
        model_type=backbone.model_type,
        arch_class=backbone.arch_class,
        params_m=backbone.params_m,
        runtime=request.runtime,
        gpu=device.name,
        gpu_memory_gb=device.memory_gb,
        estimated_memory_gb=None,
        metric=metric,
        greater_is_better=greater,
        selection_metric=selection[0],
        selection_greater_is_better=selection[1],
        labels=list(layout.classes) if task != "image_regression" else [],
        learning_rate=LEARNING_RATE[family][0],
        epochs=1,
        batch_size=1,
        eval_batch_size=1,
        grad_accum=1,
        weight_decay=0.0 if family == "causal" else 0.01,
        warmup_ratio=0.03 if family == "causal" else 0.06,
        precision="bf16" if device.bf16 else "fp16",
        early_stopping_patience=2,
        split=_split(layout),
        seed=request.seed,
        requirements=BASE_REQUIREMENTS + REQUIREMENTS[family],
    )
    plan.decide("gpu", f"{device.name} ({device.memory_gb:g} GB)", device.reason)
    plan.decide("backbone", backbone.name, why)
    _check_dry_runnable(backbone)
    _sequence(plan, layout, backbone)
    _lora(plan, backbone, lora_wanted)
    _epochs(plan, layout, request)
    memory.fit_batch(plan, backbone, device)
    _text_options(plan, layout, backbone)
    plan.decide(
        "metric",
        f"{metric} ({'higher' if greater else 'lower'} is better); early stopping on "
        f"validation {selection[0]}, patience {plan.early_stopping_patience}",
        "the task's usual measure; the test split is scored once, at the end",
    )
    plan.decide("learning_rate", f"{plan.learning_rate:g}", _rate_reason(plan, family))
    plan.decide("precision", plan.precision, device.precision_reason)
    return plan


def _backbone(
    task: DeepTask,
    family: Family,
    layout: DeepLayout,
    request: DeepRequest,
    device: memory.Device,
    lora: bool,
) -> tuple[Backbone, str]:
    if request.backbone:
        backbone = catalogue.lookup(request.backbone)
        needed = ARCH_CLASS[family]
        if backbone.arch_class != needed:
            examples = ", ".join(b.name for b in catalogue.BACKBONES if family in b.families)
            raise InvalidInput(
                f"Backbone {request.backbone!r} is a {backbone.arch_class} model "
                f"({backbone.model_type}); {task} needs a {needed} model.",
                next_step=f"Name a {needed} checkpoint such as {examples}, or leave backbone "
                "unset to let the planner choose.",
            )
        return backbone, "named by the caller (backbone=)"
    language = layout.language or "und"
    multilingual = language not in ("en", "und")
    if task == "translation" and layout.languages is not None:
        return _translation_backbone(layout.languages.source, layout.languages.target)
    candidates = [
        b
        for b in catalogue.BACKBONES
        if family in b.families and (b.multilingual or not multilingual)
    ]
    fitting = [b for b in candidates if memory.fits_at_all(b, family, device, lora)]
    if not fitting:
        raise memory.too_small(candidates[0], family, device, lora)
    tier = 0 if layout.n_records < 5_000 else 1 if layout.n_records < 50_000 else 2
    chosen = fitting[min(tier, len(fitting) - 1)]
    size = "the smallest well-known checkpoint" if tier == 0 else "a larger checkpoint"
    why = f"{layout.n_records} records: {size} that fits on {device.name}"
    if multilingual:
        why = f"multilingual, for text in '{language}'; {why}"
    return chosen, why


def _translation_backbone(source: str, target: str) -> tuple[Backbone, str]:
    if (source, target) in catalogue.OPUS_PAIRS:
        return catalogue.opus_mt(
            source, target
        ), f"an Opus-MT checkpoint trained on {source}→{target}"
    if (source, target) in catalogue.T5_PAIRS:
        t5 = catalogue.lookup("google-t5/t5-small")
        return t5, f"T5 was pretrained on {source}→{target} translation"
    mt5 = catalogue.lookup("google/mt5-small")
    return mt5, f"no dedicated checkpoint for {source}→{target}: multilingual mT5"


def _check_dry_runnable(backbone: Backbone) -> None:
    if backbone.model_type not in catalogue.DRY_RUNNABLE:
        raise InvalidInput(
            f"Backbone {backbone.name!r} ({backbone.model_type}) has no proven dry run yet, so "
            "it cannot be sent to a GPU.",
            next_step="Choose a backbone of type "
            f"{', '.join(sorted(catalogue.DRY_RUNNABLE))}, or leave backbone unset.",
        )


def _split(layout: DeepLayout) -> SplitPlan:
    if {"train", "validation", "test"} <= layout.splits.keys():
        return SplitPlan(validation_fraction=0, test_fraction=0, given=True)
    share = 0.2 if layout.n_records < 500 else 0.1
    return SplitPlan(validation_fraction=share, test_fraction=share, given=False)


def _sequence(plan: DeepPlan, layout: DeepLayout, backbone: Backbone) -> None:
    if plan.family in ("image", "detection"):
        plan.image_size = backbone.image_size
        plan.decide("image_size", f"{plan.image_size}", "the size the backbone was pretrained at")
        return
    words = layout.text_words or 64
    plan.max_length = _tokens_for(words, 512 if plan.family != "causal" else 2048)
    plan.decide(
        "max_length",
        f"{plan.max_length} tokens",
        f"95% of texts have at most {words} words (≈1.4 tokens each), rounded up",
    )
    if plan.family == "seq2seq":
        plan.max_target_length = _tokens_for(layout.target_words or words, 512)
        plan.decide("max_target_length", f"{plan.max_target_length} tokens", "from the targets")


def _tokens_for(words: int, ceiling: int) -> int:
    tokens, size = int(words * 1.4) + 8, 32
    while size < tokens and size < ceiling:
        size *= 2
    return min(size, ceiling)


def _lora(plan: DeepPlan, backbone: Backbone, wanted: bool) -> None:
    if not wanted:
        plan.decide("lora", "off", "all weights are trained")
        return
    if plan.family != "causal":
        raise InvalidInput(
            f"LoRA is offered for text_generation only, not {plan.task}.",
            next_step="Leave lora unset for this task.",
        )
    rank = 16 if backbone.params_m >= 1000 else 8
    plan.lora = LoraPlan(rank=rank, alpha=2 * rank, dropout=0.05)
    plan.learning_rate = 2e-4
    plan.decide(
        "lora",
        f"rank {rank}, alpha {2 * rank}, all linear layers",
        "adapters train a fraction of a percent of the weights, so the base model costs only "
        f"its half-precision weights; rank {rank} for a model "
        f"{'of 1B parameters or more' if rank == 16 else 'under 1B parameters'}",
    )


def _epochs(plan: DeepPlan, layout: DeepLayout, request: DeepRequest) -> None:
    n = layout.n_records
    if request.epochs:
        plan.epochs = request.epochs
        plan.decide("epochs", str(plan.epochs), "named by the caller (epochs=)")
    else:
        small, medium = (3, 2) if plan.family == "causal" else (10, 5)
        plan.epochs = small if n < 1_000 else medium if n < 20_000 else max(2, medium // 2)
        plan.decide("epochs", f"at most {plan.epochs}", f"{n} records; early stopping ends sooner")
    plan.early_stopping_patience = 3 if plan.epochs >= 8 else 2


def _text_options(plan: DeepPlan, layout: DeepLayout, backbone: Backbone) -> None:
    if plan.family != "seq2seq":
        return
    plan.num_beams = 4
    if backbone.prefix_style != "t5":
        return
    if plan.task == "summarization":
        plan.prefix = "summarize: "
    elif layout.languages is not None:
        names = catalogue.LANGUAGE_NAMES
        source, target = layout.languages.source, layout.languages.target
        plan.prefix = f"translate {names.get(source, source)} to {names.get(target, target)}: "
    plan.decide("prefix", repr(plan.prefix), "T5 names its task in a text prefix")


def _rate_reason(plan: DeepPlan, family: Family) -> str:
    if plan.lora is not None:
        return "LoRA adapters start from zero and take a higher rate (2e-4 is the usual)"
    return LEARNING_RATE[family][1]
