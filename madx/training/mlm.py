"""Masked language modelling for language adapters: masking, and a loss computed only where masked.

Every sequence has exactly max(1, round(15% of its real tokens)) predicted positions (as BERT's
own pretraining data did), listed in a (batch, K) index tensor padded to K = round(15% of the
sequence length). Every shape is then fixed for a run, so `torch.compile` traces one graph with
no data-dependent op, and the output layer runs only at the predicted positions.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.settings import EVAL_BATCH_SIZE
from ..core.tensors import IGNORE

MASK_PROB = 0.15  # BERT: 15% of tokens are predicted; of those 80% [MASK], 10% random, 10% unchanged


def predictions_per_sequence(seq_len: int) -> int:
    """K, the width of the position tensor: the most positions a sequence of seq_len tokens predicts."""
    return max(1, round(MASK_PROB * seq_len))


def mask_tokens(input_ids: torch.Tensor, tokenizer, generator: torch.Generator,
                special_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(masked input_ids (B, T), positions (B, K), targets (B, K)); deterministic given `generator`.

    Row i predicts k_i = max(1, round(0.15 * n_i)) of its n_i non-special tokens, drawn uniformly
    without replacement; positions[i, k_i:] are padding (position 0, target IGNORE)."""
    if special_ids is None:
        special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    batch, seq_len = input_ids.shape
    special = torch.isin(input_ids, special_ids)  # (B, T); padding included
    real = (~special).sum(1)  # (B,)
    counts = torch.clamp(torch.round(MASK_PROB * real.double()).long(), min=1).minimum(real)  # (B,)
    width = predictions_per_sequence(seq_len)
    # a random order of each row's real tokens first (specials sort last), then its first k_i, in position order
    keys = torch.rand(input_ids.shape, generator=generator).masked_fill(special, 2.0)
    chosen = keys.argsort(dim=1)[:, :width]  # (B, K)
    chosen = torch.where(torch.arange(width) < counts[:, None], chosen, seq_len)  # past k_i: seq_len, "none"
    chosen = chosen.sort(dim=1).values  # the chosen positions first, ascending
    valid = chosen < seq_len
    positions = torch.where(valid, chosen, 0)
    targets = torch.where(valid, input_ids.gather(1, positions), IGNORE)

    action = torch.rand(positions.shape, generator=generator)
    random_tokens = torch.randint(len(tokenizer), positions.shape, generator=generator)
    replacement = torch.where(action < 0.8, tokenizer.mask_token_id, torch.where(action < 0.9, random_tokens, targets))
    masked = input_ids.clone()
    rows = torch.arange(batch)[:, None].expand_as(positions)
    masked[rows[valid], positions[valid]] = replacement[valid]
    return masked, positions, targets


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
    """Summed MLM loss; the output layer runs only at the predicted ~15% (no full-vocabulary logits elsewhere)."""

    def __init__(self, model: nn.Module, padded: bool = False):
        super().__init__()
        self.model = model
        self.padded = padded  # line-by-line blocks have padding; concatenated blocks never do

    def forward(self, input_ids, positions, targets, attention_mask=None) -> torch.Tensor:
        # full blocks need no mask, which lets SDPA take its fastest (flash) kernel
        mask = attention_mask if self.padded else None
        hidden = self.model.base_model(input_ids=input_ids, attention_mask=mask).last_hidden_state  # (B, T, h)
        picked = hidden.gather(1, positions[..., None].expand(-1, -1, hidden.shape[-1]))  # (B, K, h)
        logits = mlm_head(self.model)(picked.flatten(0, 1))  # (B*K, V)
        return F.cross_entropy(logits.float(), targets.flatten(), ignore_index=IGNORE, reduction="sum")


class MLMBatches:
    """global_batch(step) for `train.fit`: a shuffled slice of the corpus blocks, masked with a per-step seed."""

    def __init__(self, blocks: np.ndarray, tokenizer, batch_size: int, seed: int):
        from .batching import StepIndices

        self.blocks = torch.from_numpy(np.ascontiguousarray(blocks)).long()
        self.tokenizer, self.seed = tokenizer, seed
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))  # never masked
        self.indices = StepIndices(len(blocks), batch_size, seed)

    def __call__(self, step: int) -> tuple[dict, int]:
        return masked_batch(self.blocks[self.indices(step)], self.tokenizer, self.special_ids, self.seed, step)


def masked_batch(input_ids: torch.Tensor, tokenizer, special_ids: torch.Tensor, seed: int, step: int
                 ) -> tuple[dict, int]:
    """A step's training batch of blocks (B, T), masked with the step's own seed, and its number of predictions."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    masked, positions, targets = mask_tokens(input_ids, tokenizer, generator, special_ids)
    attention_mask = (input_ids != tokenizer.pad_token_id).long()
    batch = {"input_ids": masked, "attention_mask": attention_mask, "positions": positions, "targets": targets}
    return batch, int((targets != IGNORE).sum())


HELDOUT_SHARE = 0.01  # of a language's blocks, kept out of training to measure the adapter on
HELDOUT_MAX = 2000
HELDOUT_MIN_BLOCKS = 100  # below this, 1% is not one block: nothing is held out


def heldout_count(n_blocks: int) -> int:
    """How many of n_blocks are held out: 1% (at most HELDOUT_MAX, none below HELDOUT_MIN_BLOCKS)."""
    return min(n_blocks // int(1 / HELDOUT_SHARE) if n_blocks >= HELDOUT_MIN_BLOCKS else 0, HELDOUT_MAX)


def split_heldout(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(training blocks, held-out blocks): the last heldout_count, so the language adapter's MLM loss can be
    measured on text it never trained on."""
    n = heldout_count(len(blocks))
    return (blocks[: len(blocks) - n], blocks[len(blocks) - n:]) if n else (blocks, blocks[:0])


@torch.no_grad()
def heldout_loss(objective: "MaskedLMObjective", blocks: np.ndarray, tokenizer, *, batch_size: int = EVAL_BATCH_SIZE,
                 seed: int = 0, device=None, autocast=None) -> float:
    """Mean MLM loss per predicted token on `blocks`, each masked once with a fixed seed (the same positions
    and replacements whatever model is measured, so two models' losses compare)."""
    import contextlib

    device = device or next(objective.parameters()).device
    special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    generator = torch.Generator().manual_seed(seed)
    was_training = objective.training
    objective.eval()
    total, count = 0.0, 0
    for start in range(0, len(blocks), batch_size):
        input_ids = torch.from_numpy(np.ascontiguousarray(blocks[start : start + batch_size])).long()
        masked, positions, targets = mask_tokens(input_ids, tokenizer, generator, special_ids)
        mask = (input_ids != tokenizer.pad_token_id).long()
        batch = {"input_ids": masked, "positions": positions, "targets": targets, "attention_mask": mask}
        with autocast() if autocast is not None else contextlib.nullcontext():
            total += float(objective(**{k: v.to(device) for k, v in batch.items()}))
        count += int((targets != IGNORE).sum())
    objective.train(was_training)
    return total / max(count, 1)

