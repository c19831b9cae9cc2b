"""Model shapes built in memory (nothing downloaded) for `madx bench`: a tiny one for a CPU smoke run, and those
of the base models MAD-X is run on, for a GPU."""

from __future__ import annotations

from dataclasses import dataclass


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
