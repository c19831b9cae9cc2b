"""Model shapes built in memory (nothing downloaded): `madx bench`'s (a tiny one for a CPU smoke run, and those
of the base models MAD-X is run on, for a GPU), and the demo base model's (`madx build-base`)."""

from __future__ import annotations

from dataclasses import dataclass

from .settings import option


@dataclass(frozen=True)
class Shape:
    model_type: str
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int


SHAPES = {
    "tiny": Shape("xlm-roberta", 1000, 64, 2, 4, 128, 514),  # XLM-R's position table: any --seq a GPU shape takes
    "xlmr-base": Shape("xlm-roberta", 250_002, 768, 12, 12, 3072, 514),
    "mbert-base": Shape("bert", 119_547, 768, 12, 12, 3072, 512),
}


@dataclass(frozen=True)
class TinyEncoder:
    """The demo base model's tokenizer and encoder: `madx build-base` and the config's `demo` shape keys."""

    vocab_size: int = option(1000, "sentencepiece pieces at most (fewer when the corpora have fewer word types)")
    hidden_size: int = option(128, "hidden size of the encoder")
    num_hidden_layers: int = option(4, "transformer layers")
    num_attention_heads: int = option(4, "attention heads")
    intermediate_size: int = option(512, "FFN width")
    max_seq_len: int = option(64, "longest input in tokens (the position table)")
    dropout: float = option(0.1, "hidden and attention dropout of the encoder")
    line_by_line: bool = option(True, "pretrain on single sentences (as the task sees them), not concatenated blocks")
