"""The dry run's stand-ins for a checkpoint: a tiny config of the same architecture and a
word-level tokenizer learnt from the data itself. Nothing is downloaded.

Copied next to every training script with ``deep_common.py`` (see there for the contract).
"""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, PretrainedConfig, PreTrainedTokenizerFast

# The sizes that shrink a checkpoint's architecture to a model that trains in a second on a CPU.
TINY_LAYERS = {"num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
TINY_T5 = {"d_model": 32, "d_ff": 64, "d_kv": 16, "num_layers": 2, "num_heads": 2}
TINY_ENCODER_DECODER = {
    "d_model": 32,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
    "max_position_embeddings": 128,
}
TINY_SIZES: dict[str, dict[str, Any]] = {
    "bert": {"hidden_size": 32, **TINY_LAYERS, "max_position_embeddings": 128},
    "roberta": {"hidden_size": 32, **TINY_LAYERS, "max_position_embeddings": 130},
    "xlm-roberta": {"hidden_size": 32, **TINY_LAYERS, "max_position_embeddings": 130},
    "distilbert": {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64},
    "vit": {"hidden_size": 32, **TINY_LAYERS, "image_size": 32, "patch_size": 8},
    "convnext": {"hidden_sizes": [8, 16, 32, 64], "depths": [1, 1, 1, 1], "image_size": 32},
    "resnet": {"embedding_size": 8, "hidden_sizes": [8, 16, 32, 64], "depths": [1, 1, 1, 1]},
    "yolos": {
        "hidden_size": 32,
        **TINY_LAYERS,
        "image_size": [64, 64],
        "patch_size": 16,
        "num_detection_tokens": 8,
    },
    "t5": TINY_T5,
    "mt5": TINY_T5,
    "bart": TINY_ENCODER_DECODER,
    "marian": TINY_ENCODER_DECODER,
    "gpt2": {"n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 128},
    "qwen2": {"hidden_size": 32, **TINY_LAYERS, "num_key_value_heads": 1},
    "llama": {"hidden_size": 32, **TINY_LAYERS, "num_key_value_heads": 1},
}
TINY_IMAGE_SIZE = {"vit": 32, "convnext": 32, "resnet": 32, "yolos": 64}
TINY_MAX_LENGTH = 128
SPECIAL_TOKENS = {"pad": "<pad>", "unk": "<unk>", "bos": "<s>", "eos": "</s>"}


def config(model_type: str, **task: Any) -> PretrainedConfig:
    """A small config of the planned architecture: no download."""
    return AutoConfig.for_model(model_type, **TINY_SIZES[model_type], **task)


def tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer learnt from the data itself, for the dry run (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    words = Tokenizer(models.WordLevel(unk_token=SPECIAL_TOKENS["unk"]))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    words.decoder = decoders.WordPiece()  # words joined by spaces when decoded
    trainer = trainers.WordLevelTrainer(special_tokens=list(SPECIAL_TOKENS.values()))
    words.train_from_iterator(texts, trainer=trainer)
    eos = SPECIAL_TOKENS["eos"]  # every sequence ends with it, as with real checkpoints
    words.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}",
        pair=f"$A {eos} $B {eos}",
        special_tokens=[(eos, words.token_to_id(eos))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=words,
        pad_token=SPECIAL_TOKENS["pad"],
        unk_token=SPECIAL_TOKENS["unk"],
        bos_token=SPECIAL_TOKENS["bos"],
        eos_token=SPECIAL_TOKENS["eos"],
        model_max_length=TINY_MAX_LENGTH,
    )


def special_ids(tokenizer: PreTrainedTokenizerFast) -> dict[str, Any]:
    """The token ids a config built from scratch must know."""
    return {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "decoder_start_token_id": tokenizer.pad_token_id,
    }
