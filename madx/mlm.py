"""Masked language modelling for language adapters: masking, and a loss computed only where masked."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .labelled import IGNORE

MASK_PROB = 0.15  # BERT: 15% of tokens are predicted; of those 80% [MASK], 10% random, 10% unchanged


def mask_tokens(input_ids: torch.Tensor, tokenizer, generator: torch.Generator,
                special_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked input_ids, labels with IGNORE where nothing is predicted); deterministic given `generator`."""
    if special_ids is None:
        special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    special = torch.isin(input_ids, special_ids)
    predict = (torch.rand(input_ids.shape, generator=generator) < MASK_PROB) & ~special
    if not predict.any():  # a tiny batch can draw nothing: predict one real token
        candidates = (~special).nonzero()
        predict[tuple(candidates[torch.randint(len(candidates), (1,), generator=generator)][0])] = True
    labels = torch.where(predict, input_ids, torch.full_like(input_ids, IGNORE))
    action = torch.rand(input_ids.shape, generator=generator)
    random_tokens = torch.randint(len(tokenizer), input_ids.shape, generator=generator)
    masked = input_ids.clone()
    masked[predict & (action < 0.8)] = tokenizer.mask_token_id
    swap = predict & (action >= 0.8) & (action < 0.9)
    masked[swap] = random_tokens[swap]
    return masked, labels


def mlm_head(model: nn.Module):
    """A callable (N, h) -> (N, V): the pretrained MLM head, whose output embeddings carry the inverse NICE hook."""
    if getattr(model, "lm_predictions", None) is not None:  # DeBERTa-v2/v3, non-legacy head
        embeddings = model.base_model.embeddings.word_embeddings
        return lambda hidden: model.lm_predictions(hidden, embeddings)
    for attr in ("lm_head", "cls"):
        if getattr(model, attr, None) is not None:
            return getattr(model, attr)
    raise TypeError(f"{type(model).__name__} has no masked-LM head; load the base with AutoModelForMaskedLM")


class MaskedLMObjective(nn.Module):
    """Summed MLM loss; the output layer runs only at the masked ~15% (no full-vocabulary logits elsewhere)."""

    def __init__(self, model: nn.Module, padded: bool = False):
        super().__init__()
        self.model = model
        self.padded = padded  # line-by-line blocks have padding; concatenated blocks never do

    def forward(self, input_ids, attention_mask, labels) -> torch.Tensor:
        # full blocks need no mask, which lets SDPA take its fastest (flash) kernel
        mask = attention_mask if self.padded else None
        hidden = self.model.base_model(input_ids=input_ids, attention_mask=mask).last_hidden_state  # (B, T, h)
        predict = labels != IGNORE  # (B, T)
        logits = mlm_head(self.model)(hidden[predict])  # (N, V)
        return F.cross_entropy(logits.float(), labels[predict], reduction="sum")


class MLMBatches:
    """global_batch(step) for `train.fit`: a shuffled slice of the corpus blocks, masked with a per-step seed."""

    def __init__(self, blocks: np.ndarray, tokenizer, batch_size: int, seed: int):
        from .train import StepIndices

        self.blocks = torch.from_numpy(np.ascontiguousarray(blocks)).long()
        self.tokenizer, self.seed = tokenizer, seed
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))  # never masked
        self.indices = StepIndices(len(blocks), batch_size, seed)

    def __call__(self, step: int) -> tuple[dict, int]:
        input_ids = self.blocks[self.indices(step)]  # (B, T)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        masked, labels = mask_tokens(input_ids, self.tokenizer, generator, self.special_ids)
        attention_mask = (input_ids != self.tokenizer.pad_token_id).long()
        batch = {"input_ids": masked, "attention_mask": attention_mask, "labels": labels}
        return batch, int((labels != IGNORE).sum())
