"""What the planner chooses from: GPUs and backbone checkpoints.

GPU types (memory, bf16) come from the runtimes' catalogue (tools/runtimes/data/catalogue.json,
one dated file with the providers' prices and limits); backbones from ``data/backbones.json``:
small, well-known checkpoints, smallest first within each family. A checkpoint
outside the list is accepted when its architecture can be told (from a local folder's
``config.json``, or from its name) and is of the class the task needs.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mltrainer.state.errors import InvalidInput
from mltrainer.tools.deep.models import ArchClass, Family
from mltrainer.tools.runtimes.catalogue import Gpu, catalogue

ARCH_OF_TYPE: dict[str, ArchClass] = {
    **dict.fromkeys(
        ("vit", "convnext", "convnextv2", "resnet", "swin", "deit", "beit", "dinov2"), "vision"
    ),
    **dict.fromkeys(
        ("yolos", "detr", "conditional_detr", "deformable_detr", "rt_detr"), "detector"
    ),
    **dict.fromkeys(
        ("bert", "distilbert", "roberta", "xlm-roberta", "deberta-v2", "electra", "modernbert"),
        "encoder",
    ),
    **dict.fromkeys(
        ("t5", "mt5", "bart", "mbart", "marian", "pegasus", "m2m_100"), "encoder-decoder"
    ),
    **dict.fromkeys(
        ("gpt2", "llama", "qwen2", "qwen3", "mistral", "gemma", "gemma2", "phi3", "gpt_neox"),
        "decoder",
    ),
}
# The architectures whose dry run is proven (the templates' TINY_SIZES; a test keeps them equal).
DRY_RUNNABLE = frozenset(
    {"bert", "roberta", "xlm-roberta", "distilbert", "vit", "convnext", "resnet", "yolos"}
    | {"t5", "mt5", "bart", "marian", "gpt2", "qwen2", "llama"}
)
# Checkpoint name -> model type, first match wins (xlm-roberta before roberta before bert).
NAME_PATTERNS = (
    (r"xlm-?roberta", "xlm-roberta"),
    (r"distilbert", "distilbert"),
    (r"roberta", "roberta"),
    (r"deberta", "deberta-v2"),
    (r"electra", "electra"),
    (r"modernbert", "modernbert"),
    (r"bert", "bert"),
    (r"(^|[/-])mt5", "mt5"),
    (r"(^|[/-])(flan-)?t5", "t5"),
    (r"mbart", "mbart"),
    (r"bart", "bart"),
    (r"opus-mt", "marian"),
    (r"pegasus", "pegasus"),
    (r"m2m100|nllb", "m2m_100"),
    (r"gpt2|distilgpt", "gpt2"),
    (r"qwen3", "qwen3"),
    (r"qwen", "qwen2"),
    (r"llama|smollm|tinyllama", "llama"),
    (r"mistral", "mistral"),
    (r"gemma", "gemma"),
    (r"phi-?3", "phi3"),
    (r"yolos", "yolos"),
    (r"detr", "detr"),
    (r"(^|[/-])vit", "vit"),
    (r"convnext", "convnext"),
    (r"resnet", "resnet"),
    (r"swin", "swin"),
    (r"deit", "deit"),
    (r"dinov2", "dinov2"),
)
SIZE_IN_NAME = re.compile(r"(\d+(?:\.\d+)?)\s*([bm])(?![a-z])", re.IGNORECASE)


class GpuCatalogue(BaseModel):
    taken: str
    source: str
    gpus: dict[str, Gpu]
    default_gpu: dict[str, str]


class Backbone(BaseModel):
    name: str
    model_type: str
    families: tuple[Family, ...]
    params_m: float
    hidden: int
    layers: int
    multilingual: bool = False
    image_size: int | None = None
    vocab: int = 0  # the size of the output layer of generative models (their logits' memory)
    prefix_style: str | None = None  # "t5": the task is named in a text prefix

    @property
    def arch_class(self) -> ArchClass:
        return ARCH_OF_TYPE[self.model_type]


SEQ2SEQ: tuple[Family, ...] = ("seq2seq",)


def _data(name: str) -> Any:
    text = resources.files("mltrainer.tools.deep").joinpath(f"data/{name}").read_text("utf-8")
    return json.loads(text)


BACKBONES = tuple(Backbone.model_validate(b) for b in _data("backbones.json")["backbones"])
# Opus-MT checkpoints (Marian, 74M) that exist for these pairs; T5 was trained on the others.
OPUS_PAIRS = {
    ("en", "de"), ("de", "en"), ("en", "fr"), ("fr", "en"), ("en", "es"), ("es", "en"),
    ("en", "it"), ("it", "en"), ("en", "nl"), ("nl", "en"), ("en", "ru"), ("ru", "en"),
    ("en", "zh"), ("zh", "en"), ("en", "ro"), ("ro", "en"), ("en", "ar"), ("ar", "en"),
}  # fmt: skip
T5_PAIRS = {("en", "de"), ("en", "fr"), ("en", "ro")}
LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "ro": "Romanian"}


@cache
def gpus() -> GpuCatalogue:
    table = catalogue()
    return GpuCatalogue(
        taken=table.gpus.as_of.isoformat(),
        source=table.gpus.source,
        gpus=table.gpus.types,
        default_gpu=table.default_gpu,
    )


def gpu(name: str) -> Gpu:
    return catalogue().gpu(name)


def opus_mt(source: str, target: str) -> Backbone:
    return Backbone(
        name=f"Helsinki-NLP/opus-mt-{source}-{target}",
        model_type="marian",
        families=SEQ2SEQ,
        params_m=74,
        hidden=512,
        layers=12,
        vocab=60_000,
    )


def lookup(name: str) -> Backbone:
    """A named checkpoint: from the list, a local folder's config.json, or its name's family."""
    for backbone in BACKBONES:
        if backbone.name.lower() == name.lower() or backbone.name.split("/")[-1] == name:
            return backbone
    config = Path(name) / "config.json"
    model_type = _local_model_type(config) if config.is_file() else _type_from_name(name)
    if model_type is None or model_type not in ARCH_OF_TYPE:
        known = ", ".join(sorted(ARCH_OF_TYPE))
        raise InvalidInput(
            f"Cannot tell the architecture of backbone {name!r} from its name.",
            next_step=f"Name a checkpoint whose name shows its family ({known}), or a local "
            "folder with its config.json.",
        )
    return _estimated(name, model_type)


def _local_model_type(config: Path) -> str | None:
    try:
        return str(json.loads(config.read_text(encoding="utf-8")).get("model_type") or "") or None
    except (ValueError, OSError):
        return None


def _type_from_name(name: str) -> str | None:
    lowered = name.lower()
    return next((kind for pattern, kind in NAME_PATTERNS if re.search(pattern, lowered)), None)


def _estimated(name: str, model_type: str) -> Backbone:
    """An unlisted checkpoint: its size from its name, else the size of its family's base."""
    similar = next((b for b in BACKBONES if b.model_type == model_type), None)
    size = SIZE_IN_NAME.search(name.split("/")[-1])
    params = similar.params_m if similar else 350.0
    if size:
        params = float(size.group(1)) * (1000 if size.group(2).lower() == "b" else 1)
    hidden = similar.hidden if similar else 1024
    layers = similar.layers if similar else 24
    if size and similar and params > similar.params_m:  # wider and deeper, as checkpoints grow
        ratio = (params / similar.params_m) ** (1 / 3)
        hidden, layers = int(hidden * ratio), int(layers * ratio)
    return Backbone(
        name=name,
        model_type=model_type,
        families=(_family_of(ARCH_OF_TYPE[model_type]),),
        params_m=params,
        hidden=hidden,
        layers=layers,
        multilingual=model_type in ("xlm-roberta", "mt5", "mbart", "m2m_100", "qwen2", "qwen3"),
        image_size=similar.image_size if similar else None,
        vocab=similar.vocab if similar else 0,
        prefix_style="t5" if model_type == "t5" else None,
    )


def _family_of(arch: ArchClass) -> Family:
    return {
        "vision": "image",
        "detector": "detection",
        "encoder": "text",
        "encoder-decoder": "seq2seq",
        "decoder": "causal",
    }[arch]  # type: ignore[return-value]
