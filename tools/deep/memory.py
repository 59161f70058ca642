"""The GPU a plan runs on, and whether a backbone and batch fit in its memory.

The estimate is deliberately simple and on the safe side (the planner keeps 10% spare):
weights and optimiser state (16 bytes a parameter for full fine-tuning with Adam in mixed
precision: fp32 weights, gradients and two moments; 2 bytes a frozen half-precision parameter
under LoRA), activations (≈34 bytes per token per hidden unit per layer without
checkpointing, after Korthikanti et al. 2022), the logits of generative models
(sequence × vocabulary × 8 bytes with their fp32 loss), and 1 GB of CUDA context.
"""

from __future__ import annotations

from dataclasses import dataclass

from mltrainer.state.errors import InvalidInput
from mltrainer.tools.deep import catalogue
from mltrainer.tools.deep.catalogue import Backbone
from mltrainer.tools.deep.models import DeepPlan, DeepRequest, Family

HEADROOM = 0.9
CUDA_CONTEXT_GB = 1.0
DEFAULT_TOKENS: dict[Family, int] = {"text": 128, "seq2seq": 320, "causal": 512}
GB = 1024**3
BATCH: dict[Family, int] = {"image": 32, "detection": 8, "text": 32, "seq2seq": 16, "causal": 16}


@dataclass(frozen=True)
class Device:
    name: str
    memory_gb: float
    bf16: bool
    reason: str
    precision_reason: str


def local_gpu_memory_gb() -> float | None:
    """This machine's first CUDA GPU's memory, for ``DeepRequest.local_gpu_memory_gb``; None
    without a GPU or without torch."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.get_device_properties(0).total_memory / GB, 1)


def device_for(request: DeepRequest) -> Device:
    """The GPU of the request: named, the runtime's default, or this machine's."""
    if request.runtime == "local":
        if request.local_gpu_memory_gb is None:
            raise InvalidInput(
                "Fine-tuning a deep-learning model needs a CUDA GPU, and this machine has none "
                "(runtime='local').",
                next_step="Use runtime='modal' or runtime='kaggle' with a gpu, or run the "
                "server on a machine with a GPU. A dry run (dry_run=True) needs no GPU.",
            )
        return Device(
            name="local GPU",
            memory_gb=request.local_gpu_memory_gb,
            bf16=False,
            reason="runtime='local': this machine's CUDA GPU",
            precision_reason="fp16 mixed precision runs on every CUDA GPU (bf16 support "
            "is not known for a local one)",
        )
    catalogue_ = catalogue.gpus()
    name = request.gpu or catalogue_.default_gpu[request.runtime]
    gpu = catalogue.gpu(name)
    origin = "named by the caller (gpu=)" if request.gpu else f"{request.runtime}'s default GPU"
    return Device(
        name=gpu.name,
        memory_gb=gpu.memory_gb,
        bf16=gpu.bf16,
        reason=f"{origin}; memory from the GPU catalogue of {catalogue_.taken}",
        precision_reason=f"{gpu.name} {'supports' if gpu.bf16 else 'has no'} bf16"
        + ("" if gpu.bf16 else ": fp16 mixed precision with loss scaling"),
    )


def tokens_per_sample(backbone: Backbone, family: Family, plan: DeepPlan | None = None) -> int:
    if family in ("image", "detection"):
        side = (plan.image_size if plan else None) or backbone.image_size or 224
        return (side // 16) ** 2 + 1
    if plan is not None and plan.max_length:
        return plan.max_length + (plan.max_target_length or 0)
    return DEFAULT_TOKENS[family]


def estimate_gb(
    backbone: Backbone, family: Family, *, batch: int, tokens: int, lora: bool
) -> float:
    params = backbone.params_m * 1e6
    weights = params * (2 + 0.005 * 16 if lora else 16)
    per_token = backbone.layers * backbone.hidden * (2 if lora else 34)  # LoRA: checkpointed
    if lora:
        per_token += backbone.hidden * 34  # the one layer being recomputed
    logits = backbone.vocab * 8 if family in ("seq2seq", "causal") else 0
    activations = batch * tokens * (per_token + logits)
    return round((weights + activations) / GB + CUDA_CONTEXT_GB, 2)


def fits_at_all(backbone: Backbone, family: Family, device: Device, lora: bool) -> bool:
    tokens = tokens_per_sample(backbone, family)
    need = estimate_gb(backbone, family, batch=1, tokens=tokens, lora=lora)
    return need <= HEADROOM * device.memory_gb


def too_small(backbone: Backbone, family: Family, device: Device, lora: bool) -> InvalidInput:
    tokens = tokens_per_sample(backbone, family)
    need = estimate_gb(backbone, family, batch=1, tokens=tokens, lora=lora)
    bigger = sorted(
        (g for g in catalogue.gpus().gpus.values() if HEADROOM * g.memory_gb >= need),
        key=lambda g: g.memory_gb,
    )
    steps = []
    if family == "causal" and not lora:
        steps.append("train LoRA adapters instead of every weight (lora=True)")
    steps.append("choose a smaller backbone")
    if bigger:
        steps.append(f"use a GPU with more memory ({bigger[0].name}, {bigger[0].memory_gb:g} GB)")
    mode = "with LoRA" if lora else "with every weight trained (no LoRA)"
    return InvalidInput(
        f"{backbone.name} ({backbone.params_m:g}M parameters) needs about {need:g} GB to train "
        f"{mode} at batch size 1, more than {device.name}'s {device.memory_gb:g} GB allow.",
        next_step="To fit: " + "; or ".join(steps) + ".",
    )


def fit_batch(plan: DeepPlan, backbone: Backbone, device: Device) -> None:
    """The largest power-of-two batch up to the family's target that fits; accumulation for
    the rest, so the effective batch stays the target."""
    target = BATCH[plan.family]
    lora = plan.lora is not None
    tokens = tokens_per_sample(backbone, plan.family, plan)
    budget = HEADROOM * device.memory_gb
    batch = target
    while batch >= 1:
        need = estimate_gb(backbone, plan.family, batch=batch, tokens=tokens, lora=lora)
        if need <= budget:
            break
        batch //= 2
    if batch < 1:
        raise too_small(backbone, plan.family, device, lora)
    plan.batch_size, plan.grad_accum = batch, target // batch
    plan.eval_batch_size = batch * 2
    plan.estimated_memory_gb = need
    reason = (
        f"about {need:g} GB of {device.name}'s {device.memory_gb:g} GB at {tokens} tokens a sample"
    )
    if batch < target:
        reason += f"; batch {batch * 2} would not fit, so {plan.grad_accum} steps accumulate"
    plan.decide(
        "batch_size",
        f"{batch} (effective {batch * plan.grad_accum}, gradient accumulation {plan.grad_accum})",
        reason,
    )
