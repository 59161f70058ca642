"""The typed boundary of the deep-learning tasks: layouts, requests, plans, script configs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

DeepTask = Literal[
    "image_classification",
    "image_regression",
    "object_detection",
    "text_classification",
    "token_classification",
    "summarization",
    "translation",
    "text_generation",
]
Family = Literal["image", "detection", "text", "seq2seq", "causal"]
ArchClass = Literal["vision", "detector", "encoder", "encoder-decoder", "decoder"]
LayoutKind = Literal[
    "image_folder",
    "image_table",
    "coco",
    "conll",
    "token_table",
    "text_table",
    "text_pair",
    "chat",
    "instruction",
]
Runtime = Literal["local", "modal", "kaggle"]
Precision = Literal["fp32", "fp16", "bf16"]

FAMILY: dict[DeepTask, Family] = {
    "image_classification": "image",
    "image_regression": "image",
    "object_detection": "detection",
    "text_classification": "text",
    "token_classification": "text",
    "summarization": "seq2seq",
    "translation": "seq2seq",
    "text_generation": "causal",
}
TEMPLATE: dict[Family, str] = {
    "image": "train_image.py",
    "detection": "train_detection.py",
    "text": "train_text.py",
    "seq2seq": "train_seq2seq.py",
    "causal": "train_causal.py",
}
ARCH_CLASS: dict[Family, ArchClass] = {
    "image": "vision",
    "detection": "detector",
    "text": "encoder",
    "seq2seq": "encoder-decoder",
    "causal": "decoder",
}


class Decision(BaseModel):
    """One choice of the planner and why (the same shape as the tabular planner's)."""

    stage: str
    decision: str
    reason: str


class LayoutColumns(BaseModel):
    """Which column (or record field) plays which part; None where the layout has no such part."""

    image: str | None = None
    label: str | None = Field(default=None, description="A class label (text or integer).")
    value: str | None = Field(default=None, description="A numeric target (regression).")
    text: str | None = None
    tokens: str | None = None
    tags: str | None = None
    source: str | None = None
    target: str | None = None
    messages: str | None = None
    instruction: str | None = None
    context: str | None = None
    response: str | None = None


class LanguagePair(BaseModel):
    source: str = Field(description="ISO 639-1 code, or 'und' when it cannot be told.")
    target: str


class DeepLayout(BaseModel):
    """What a dataset holds for deep learning: its layout, the tasks it fits, its parts."""

    kind: LayoutKind
    tasks: list[DeepTask] = Field(description="Task candidates, the most likely first.")
    path: str = Field(description="The file or folder the layout was read from.")
    files: list[str] = Field(default_factory=list, description="Annotation or data files used.")
    columns: LayoutColumns = Field(default_factory=LayoutColumns)
    classes: list[str] = Field(default_factory=list, description="Class or tag names, sorted.")
    n_records: int
    splits: dict[str, int] = Field(
        default_factory=dict, description="Records per split when the dataset comes split."
    )
    language: str | None = Field(default=None, description="The text's language (ISO 639-1).")
    languages: LanguagePair | None = None
    text_words: int | None = Field(default=None, description="95th percentile of words a text.")
    target_words: int | None = None
    image_size: tuple[int, int] | None = Field(default=None, description="Median width, height.")
    problems: list[str] = Field(default_factory=list, description="Things that need a look.")


class DeepRequest(BaseModel):
    task: DeepTask | Literal["auto"] = "auto"
    runtime: Runtime = "local"
    gpu: str | None = Field(
        default=None, description="A GPU of the catalogue; default per runtime."
    )
    backbone: str | None = None
    lora: bool | None = Field(default=None, description="None: LoRA for text generation only.")
    epochs: int | None = Field(default=None, ge=1, le=100)
    seed: int = 0
    local_gpu_memory_gb: float | None = Field(
        default=None, description="This machine's GPU memory; None when it has no CUDA GPU."
    )


class LoraPlan(BaseModel):
    rank: int
    alpha: int
    dropout: float
    target_modules: str | list[str] = "all-linear"


class SplitPlan(BaseModel):
    validation_fraction: float
    test_fraction: float
    given: bool = Field(description="True when the dataset came split and its splits are kept.")


class ScriptFields(BaseModel):
    """What a plan and the script's config.json share: the task, the model, the settings."""

    task: DeepTask
    family: Family
    backbone: str
    model_type: str
    labels: list[str] = Field(default_factory=list)
    metric: str
    greater_is_better: bool
    selection_metric: str = Field(description="What early stopping watches on validation.")
    selection_greater_is_better: bool
    learning_rate: float
    epochs: int
    batch_size: int
    eval_batch_size: int
    grad_accum: int
    weight_decay: float
    warmup_ratio: float
    precision: Precision
    max_length: int | None = None
    max_target_length: int | None = None
    image_size: int | None = None
    prefix: str = ""
    num_beams: int = 1
    lora: LoraPlan | None = None
    early_stopping_patience: int
    seed: int


class DeepPlan(ScriptFields):
    """Everything a training script needs, each choice with its reason in ``decisions``."""

    template: str
    arch_class: ArchClass
    params_m: float = Field(description="The backbone's size in millions of parameters.")
    runtime: Runtime
    gpu: str | None
    gpu_memory_gb: float | None
    estimated_memory_gb: float | None
    split: SplitPlan
    requirements: list[str] = Field(description="pip requirements of the script.")
    decisions: list[Decision] = Field(default_factory=list)

    def decide(self, stage: str, decision: str, reason: str) -> None:
        self.decisions.append(Decision(stage=stage, decision=decision, reason=reason))


class ScriptConfig(ScriptFields):
    """``config.json`` beside a rendered script: the plan's parameters, nothing else.

    The script reads it as plain JSON (it runs where this package is not installed); a test
    checks that every key a template reads is here.
    """

    pipeline_tag: str
    dry_run_steps: int = 2
    dry_run_records: int = 8
