"""Load a model folder written by a training script and predict with it (no download).

Copied next to every training script (which reloads its own output with it, as its last step)
and used by mltrainer-mcp's local ``predict``. The task comes from the folder's
``metrics.json``; inputs are PIL images for image tasks, strings for text tasks, word lists for
token classification, and strings or chat ``messages`` lists for text generation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

IMAGE_TASKS = ("image_classification", "image_regression", "object_detection")
SEQ2SEQ_TASKS = ("summarization", "translation")
CHAT_ROLES = ("system", "user", "assistant")


def task_of(model_dir: Path) -> str:
    return str(json.loads((model_dir / "metrics.json").read_text(encoding="utf-8"))["task"])


def format_chat(tokenizer: Any, messages: list[dict[str, str]], *, prompt_only: bool) -> str:
    """The tokenizer's own chat template, or a plain role-tagged one when it has none."""
    if prompt_only and messages and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=prompt_only
        )
        return str(text)
    text = "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages)
    return text + "<|assistant|>\n" if prompt_only else text + str(tokenizer.eos_token or "")


def load(auto: Any, model_dir: Path) -> Any:
    """The model in eval mode; refused when any saved weight did not find its place."""
    model, info = auto.from_pretrained(model_dir, output_loading_info=True)
    lost = [*info.get("missing_keys", []), *info.get("unexpected_keys", [])]
    if lost:
        raise ValueError(f"{model_dir} does not reload whole: {sorted(lost)[:5]} ...")
    return model.eval()


def predict(model_dir: Path, inputs: list[Any], **options: Any) -> list[Any]:
    """One prediction per input, of the shape the task calls for."""
    task = task_of(model_dir)
    with torch.no_grad():
        if task in ("image_classification", "image_regression"):
            return _images(model_dir, inputs, regression=task == "image_regression")
        if task == "object_detection":
            return _detect(model_dir, inputs, float(options.get("threshold", 0.5)))
        if task == "text_classification":
            return _texts(model_dir, inputs)
        if task == "token_classification":
            return _tokens(model_dir, inputs)
        if task in SEQ2SEQ_TASKS:
            return _seq2seq(model_dir, inputs, int(options.get("max_new_tokens", 64)))
        if task == "text_generation":
            return _generate(model_dir, inputs, int(options.get("max_new_tokens", 64)))
    raise ValueError(f"Unknown task {task!r} in {model_dir / 'metrics.json'}.")


def _labelled(logits: torch.Tensor, id2label: dict[int, str]) -> list[dict[str, Any]]:
    probabilities = logits.softmax(dim=-1).tolist()
    return [
        {
            "label": id2label[max(range(len(row)), key=row.__getitem__)],
            "scores": {id2label[i]: round(p, 6) for i, p in enumerate(row)},
        }
        for row in probabilities
    ]


def _images(model_dir: Path, images: list[Any], *, regression: bool) -> list[Any]:
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    processor = AutoImageProcessor.from_pretrained(model_dir)
    model = load(AutoModelForImageClassification, model_dir)
    batch = processor(images=[image.convert("RGB") for image in images], return_tensors="pt")
    logits = model(pixel_values=batch["pixel_values"]).logits
    if regression:
        mean = float(getattr(model.config, "mltrainer_target_mean", 0.0))
        std = float(getattr(model.config, "mltrainer_target_std", 1.0))
        return [{"value": mean + std * float(v)} for v in logits[:, 0].tolist()]
    return _labelled(logits, model.config.id2label)


def _detect(model_dir: Path, images: list[Any], threshold: float) -> list[Any]:
    from transformers import AutoImageProcessor, AutoModelForObjectDetection

    processor = AutoImageProcessor.from_pretrained(model_dir)
    model = load(AutoModelForObjectDetection, model_dir)
    rgb = [image.convert("RGB") for image in images]
    outputs = model(pixel_values=processor(images=rgb, return_tensors="pt")["pixel_values"])
    sizes = torch.tensor([[image.height, image.width] for image in rgb])
    found = processor.post_process_object_detection(
        outputs, threshold=threshold, target_sizes=sizes
    )
    return [
        [
            {"label": model.config.id2label[int(label)], "score": float(score), "box": box}
            for score, label, box in zip(
                item["scores"].tolist(),
                item["labels"].tolist(),
                item["boxes"].tolist(),
                strict=True,
            )
        ]
        for item in found
    ]


def _texts(model_dir: Path, texts: list[str]) -> list[Any]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = load(AutoModelForSequenceClassification, model_dir)
    batch = tokenizer(texts, truncation=True, padding=True, return_tensors="pt")
    batch.pop("token_type_ids", None)  # segment ids are all zero here; some models take none
    return _labelled(model(**batch).logits, model.config.id2label)


def _tokens(model_dir: Path, sentences: list[list[str]]) -> list[Any]:
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = load(AutoModelForTokenClassification, model_dir)
    batch = tokenizer(
        sentences, is_split_into_words=True, truncation=True, padding=True, return_tensors="pt"
    )
    predicted = model(**batch).logits.argmax(dim=-1).tolist()
    tagged: list[list[str]] = []
    for row, words in enumerate(sentences):
        tags = ["O"] * len(words)  # words cut off by truncation keep the outside tag
        seen: set[int] = set()
        for position, word in enumerate(batch.word_ids(row)):
            if word is not None and word not in seen:
                seen.add(word)
                tags[word] = model.config.id2label[predicted[row][position]]
        tagged.append(tags)
    return tagged


def _seq2seq(model_dir: Path, texts: list[str], max_new_tokens: int) -> list[Any]:
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = load(AutoModelForSeq2SeqLM, model_dir)
    prefix = str(getattr(model.config, "mltrainer_prefix", "") or "")
    batch = tokenizer(
        [prefix + t for t in texts], truncation=True, padding=True, return_tensors="pt"
    )
    batch.pop("token_type_ids", None)
    generated = model.generate(**batch, max_new_tokens=max_new_tokens, num_beams=1)
    return [str(t) for t in tokenizer.batch_decode(generated, skip_special_tokens=True)]


def _generate(model_dir: Path, prompts: list[Any], max_new_tokens: int) -> list[Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    model = load(AutoModelForCausalLM, model_dir)
    texts = [
        format_chat(tokenizer, p, prompt_only=True)
        if isinstance(p, list)
        else format_chat(tokenizer, [{"role": "user", "content": str(p)}], prompt_only=True)
        for p in prompts
    ]
    batch = tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False)
    batch.pop("token_type_ids", None)
    generated = model.generate(
        **batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
    )
    new_tokens = generated[:, batch["input_ids"].shape[1] :]
    return [str(t) for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
