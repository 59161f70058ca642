"""Fine-tune an encoder-decoder transformer: summarization or translation.

Records: ``{"source": ..., "target": ...}``. Scored on generated text: ROUGE-1/2/L
(rouge-score) for summaries, BLEU and chrF (sacreBLEU) for translations; the best epoch is
chosen on the validation score. See ``deep_common`` for the run contract (folders, config,
dry run).
"""

from __future__ import annotations

from typing import Any

import deep_common as common
import deep_infer
import deep_tiny as tiny
import numpy as np
from transformers import (
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    DataCollatorForSeq2Seq,
    EvalPrediction,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
)

IGNORE = -100


def encode(run: common.Run, tokenizer: Any, records: list[dict[str, Any]]) -> list[Any]:
    prefix = str(run["prefix"])
    sources = tokenizer(
        [prefix + r["source"] for r in records], truncation=True, max_length=int(run["max_length"])
    )
    targets = tokenizer(
        text_target=[r["target"] for r in records],
        truncation=True,
        max_length=int(run["max_target_length"]),
    )
    return [
        {"input_ids": ids, "attention_mask": mask, "labels": labels}
        for ids, mask, labels in zip(
            sources["input_ids"], sources["attention_mask"], targets["input_ids"], strict=True
        )
    ]


def text_scores(task: str, tokenizer: Any) -> Any:
    def compute(prediction: EvalPrediction) -> dict[str, float]:
        generated = prediction.predictions
        generated = generated[0] if isinstance(generated, tuple) else generated
        pad = tokenizer.pad_token_id
        guesses = decode(tokenizer, np.where(np.asarray(generated) == IGNORE, pad, generated))
        truths = decode(
            tokenizer, np.where(prediction.label_ids == IGNORE, pad, prediction.label_ids)
        )
        return summary_scores(guesses, truths) if task == "summarization" else bleu(guesses, truths)

    return compute


def decode(tokenizer: Any, ids: Any) -> list[str]:
    return [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]


def summary_scores(guesses: list[str], truths: list[str]) -> dict[str, float]:
    from rouge_score import rouge_scorer

    kinds = ("rouge1", "rouge2", "rougeL")
    scorer = rouge_scorer.RougeScorer(list(kinds), use_stemmer=True)
    scores = [scorer.score(truth, guess) for guess, truth in zip(guesses, truths, strict=True)]
    return {kind: float(np.mean([s[kind].fmeasure for s in scores])) for kind in kinds}


def bleu(guesses: list[str], truths: list[str]) -> dict[str, float]:
    import sacrebleu

    return {
        "bleu": float(sacrebleu.corpus_bleu(guesses, [truths]).score),
        "chrf": float(sacrebleu.corpus_chrf(guesses, [truths]).score),
    }


def model_for(run: common.Run, tokenizer: Any) -> Any:
    if run.dry_run:
        config = tiny.config(str(run["model_type"]), **tiny.special_ids(tokenizer))
        model = AutoModelForSeq2SeqLM.from_config(config)
    else:
        model = AutoModelForSeq2SeqLM.from_pretrained(run["backbone"])
    model.config.mltrainer_prefix = str(run["prefix"])  # predict adds it as training did
    return model


def main() -> None:
    run = common.start(__doc__ or "")
    splits = {name: common.load_split(run, name) for name in common.SPLITS}
    if run.dry_run:
        texts = [r[key] for s in splits.values() for r in s for key in ("source", "target")]
        tokenizer = tiny.tokenizer([*texts, str(run["prefix"])])
    else:
        tokenizer = AutoTokenizer.from_pretrained(run["backbone"])
    data = {name: common.Rows(encode(run, tokenizer, records)) for name, records in splits.items()}
    model = model_for(run, tokenizer)
    watch = common.Watch(run, model)
    beams = 1 if run.dry_run else int(run["num_beams"])
    trainer = Seq2SeqTrainer(
        model=model,
        args=common.training_args(
            run,
            args_class=Seq2SeqTrainingArguments,
            predict_with_generate=True,
            generation_max_length=int(run["max_target_length"]),
            generation_num_beams=beams,
        ),
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=IGNORE),
        processing_class=tokenizer,
        compute_metrics=text_scores(str(run["task"]), tokenizer),
        callbacks=[watch],
    )
    trainer.train()
    scored = common.scores(trainer, data["test"])
    common.save(run, trainer.model, tokenizer)
    common.finish(run, watch, splits, scored)
    sample = [r["source"] for r in splits["test"][:4]]
    found = deep_infer.predict(run.output, sample, max_new_tokens=int(run["max_target_length"]))
    common.check_reload(run, found, len(sample))


if __name__ == "__main__":
    main()
