"""Fine-tune a causal language model on conversations, with LoRA (peft) by default.

Records: ``{"messages": [{"role": "system" | "user" | "assistant", "content": ...}, ...]}``,
formatted with the tokenizer's chat template (or a plain role-tagged one when it has none).
Scored by held-out loss and perplexity; the best epoch is chosen on the validation loss. The
model folder holds the merged weights (usable without peft) and the LoRA adapter on its own in
``adapter/``. See ``deep_common`` for the run contract (folders, config, dry run).
"""

from __future__ import annotations

import math
from typing import Any

import deep_common as common
import deep_infer
import deep_tiny as tiny
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    Trainer,
)

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def tokenizer_for(run: common.Run, splits: dict[str, list[dict[str, Any]]]) -> Any:
    if run.dry_run:
        markers = [f"<|{role}|>" for role in deep_infer.CHAT_ROLES]
        texts = [m["content"] for s in splits.values() for r in s for m in r["messages"]]
        return tiny.tokenizer([*texts, *markers])
    tokenizer = AutoTokenizer.from_pretrained(run["backbone"])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # causal checkpoints often ship without one
    return tokenizer


def encode(run: common.Run, tokenizer: Any, records: list[dict[str, Any]]) -> list[Any]:
    texts = [deep_infer.format_chat(tokenizer, r["messages"], prompt_only=False) for r in records]
    encoded = tokenizer(
        texts, truncation=True, max_length=int(run["max_length"]), add_special_tokens=False
    )
    return [
        {"input_ids": ids, "attention_mask": mask}
        for ids, mask in zip(encoded["input_ids"], encoded["attention_mask"], strict=True)
    ]


def model_for(run: common.Run, tokenizer: Any) -> Any:
    if run.dry_run:
        config = tiny.config(str(run["model_type"]), **tiny.special_ids(tokenizer))
        model = AutoModelForCausalLM.from_config(config)
    else:
        # Half-precision weights for LoRA (peft keeps the adapters in fp32) and for bf16; full
        # fine-tuning with fp16 needs fp32 weights, which the Trainer's autocast scales.
        half = bool(run.config.get("lora")) or run["precision"] == "bf16"
        on_gpu = half and torch.cuda.is_available()
        dtype = DTYPES[str(run["precision"])] if on_gpu else torch.float32
        model = AutoModelForCausalLM.from_pretrained(run["backbone"], dtype=dtype)
    model.config.pad_token_id = tokenizer.pad_token_id
    lora = run.config.get("lora")
    if not lora:
        return model
    from peft import LoraConfig, get_peft_model

    adapters = LoraConfig(
        r=int(lora["rank"]),
        lora_alpha=int(lora["alpha"]),
        lora_dropout=float(lora["dropout"]),
        target_modules=lora["target_modules"],
        task_type="CAUSAL_LM",
    )
    if not run.dry_run:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()  # gradients reach the adapters through checkpoints
    return get_peft_model(model, adapters)


def save(run: common.Run, model: Any, tokenizer: Any) -> None:
    """Merged weights for predict and deploy; the adapter alone beside them."""
    if run.config.get("lora"):
        model.save_pretrained(run.output / "adapter", safe_serialization=True)
        model = model.merge_and_unload()
    common.save(run, model, tokenizer)


def perplexity(scores: dict[str, float]) -> dict[str, float]:
    return {**scores, "perplexity": math.exp(min(scores["loss"], 50.0))}


def main() -> None:
    run = common.start(__doc__ or "")
    splits = {name: common.load_split(run, name) for name in common.SPLITS}
    tokenizer = tokenizer_for(run, splits)
    data = {name: common.Rows(encode(run, tokenizer, records)) for name, records in splits.items()}
    model = model_for(run, tokenizer)
    watch = common.Watch(run, model)
    trainer = Trainer(
        model=model,
        args=common.training_args(run, prediction_loss_only=True),
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        processing_class=tokenizer,
        callbacks=[watch],
    )
    trainer.train()
    validation, test = common.scores(trainer, data["test"])
    save(run, trainer.model, tokenizer)
    common.finish(run, watch, splits, (perplexity(validation), perplexity(test)))
    sample = [r["messages"] for r in splits["test"][:4]]
    found = deep_infer.predict(run.output, sample, max_new_tokens=8)
    common.check_reload(run, found, len(sample))


if __name__ == "__main__":
    main()
