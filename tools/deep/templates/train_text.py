"""Fine-tune an encoder transformer: text classification or token classification (tagging).

Records: ``{"text": ..., "label": ...}`` (text_classification) or ``{"tokens": [...],
"tags": [...]}`` (token_classification, one tag per word). Metrics: accuracy and macro F1
(scikit-learn); entity-level F1, precision and recall (seqeval). See ``deep_common`` for the
run contract (folders, config, dry run).
"""

from __future__ import annotations

from typing import Any

import deep_common as common
import deep_infer
import deep_tiny as tiny
import numpy as np
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    EvalPrediction,
    Trainer,
)

IGNORE = -100  # the label of sub-word pieces and special tokens: no loss, no score


def tokenizer_for(run: common.Run, splits: dict[str, list[dict[str, Any]]], tagging: bool) -> Any:
    if not run.dry_run:
        prefix_space = tagging and run["model_type"] in ("roberta", "xlm-roberta", "gpt2")
        options = {"add_prefix_space": True} if prefix_space else {}
        return AutoTokenizer.from_pretrained(run["backbone"], **options)
    words = [" ".join(r["tokens"]) if tagging else r["text"] for s in splits.values() for r in s]
    return tiny.tokenizer(words)


def model_for(run: common.Run, tokenizer: Any, tagging: bool) -> Any:
    names = common.label_names(run)
    auto = AutoModelForTokenClassification if tagging else AutoModelForSequenceClassification
    if run.dry_run:
        return auto.from_config(
            tiny.config(str(run["model_type"]), **names, **tiny.special_ids(tokenizer))
        )
    return auto.from_pretrained(run["backbone"], ignore_mismatched_sizes=True, **names)


def encode_texts(run: common.Run, tokenizer: Any, records: list[dict[str, Any]]) -> list[Any]:
    index = {label: i for i, label in enumerate(run.labels)}
    encoded = tokenizer(
        [r["text"] for r in records], truncation=True, max_length=int(run["max_length"])
    )
    return [
        {"input_ids": ids, "attention_mask": mask, "labels": index[str(r["label"])]}
        for ids, mask, r in zip(
            encoded["input_ids"], encoded["attention_mask"], records, strict=True
        )
    ]


def encode_tags(run: common.Run, tokenizer: Any, records: list[dict[str, Any]]) -> list[Any]:
    """Each word's tag on its first piece; the other pieces are ignored."""
    index = {label: i for i, label in enumerate(run.labels)}
    encoded = tokenizer(
        [r["tokens"] for r in records],
        is_split_into_words=True,
        truncation=True,
        max_length=int(run["max_length"]),
    )
    rows = []
    for row, record in enumerate(records):
        labels, previous = [], None
        for word in encoded.word_ids(row):
            first_piece = word is not None and word != previous
            labels.append(index[str(record["tags"][word])] if first_piece else IGNORE)
            previous = word
        ids, mask = encoded["input_ids"][row], encoded["attention_mask"][row]
        rows.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return rows


def tag_metrics(labels: list[str]) -> Any:
    def compute(prediction: EvalPrediction) -> dict[str, float]:
        from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

        predicted = np.argmax(np.asarray(prediction.predictions), axis=-1)
        truth_rows, predicted_rows = [], []
        for truth, guess in zip(np.asarray(prediction.label_ids), predicted, strict=True):
            kept = truth != IGNORE
            truth_rows.append([labels[i] for i in truth[kept]])
            predicted_rows.append([labels[i] for i in guess[kept]])
        return {
            "f1": float(f1_score(truth_rows, predicted_rows, zero_division=0)),
            "precision": float(precision_score(truth_rows, predicted_rows, zero_division=0)),
            "recall": float(recall_score(truth_rows, predicted_rows, zero_division=0)),
            "accuracy": float(accuracy_score(truth_rows, predicted_rows)),
        }

    return compute


def main() -> None:
    run = common.start(__doc__ or "")
    tagging = run["task"] == "token_classification"
    splits = {name: common.load_split(run, name) for name in common.SPLITS}
    tokenizer = tokenizer_for(run, splits, tagging)
    encode = encode_tags if tagging else encode_texts
    data = {name: common.Rows(encode(run, tokenizer, records)) for name, records in splits.items()}
    model = model_for(run, tokenizer, tagging)
    watch = common.Watch(run, model)
    trainer = Trainer(
        model=model,
        args=common.training_args(run),
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        data_collator=(DataCollatorForTokenClassification if tagging else DataCollatorWithPadding)(
            tokenizer
        ),
        processing_class=tokenizer,
        compute_metrics=tag_metrics(run.labels) if tagging else common.classification_metrics,
        callbacks=[watch],
    )
    trainer.train()
    scored = common.scores(trainer, data["test"])
    common.save(run, trainer.model, tokenizer)
    common.finish(run, watch, splits, scored)
    sample = [r["tokens"] if tagging else r["text"] for r in splits["test"][:4]]
    common.check_reload(run, deep_infer.predict(run.output, sample), len(sample))


if __name__ == "__main__":
    main()
