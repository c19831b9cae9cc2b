"""Training a linguistic K-adapter on dependency trees (madx/tasks/knowledge.py): the K-adapter and a dependency
head train, the encoder and every other adapter stay frozen (madx/adapters/kadapter.py)."""

from __future__ import annotations

import logging
import random

import torch

from ..adapters.kadapter import kadapters, knowledge_features, train_kadapters
from ..tasks.knowledge import DependencyHead, Tree, collate_trees, dependency_loss, encode_trees

log = logging.getLogger(__name__)


def train_kadapter(model, name: str, trees: list[Tree], tokenizer, *, steps: int = 100, batch_size: int = 16,
                   lr: float = 1e-3, max_length: int = 128, seed: int = 1, log_every: int = 10
                   ) -> tuple[DependencyHead, list[float]]:
    """Train K-adapter `name` (already added) to predict each word's head in `trees`; returns the head and the loss
    of every step. Batches are drawn from a shuffle seeded by `seed`, epoch after epoch."""
    if name not in kadapters(model):
        raise ValueError(f"no K-adapter {name!r} in the model: add it first (madx.add_kadapter)")
    torch.manual_seed(seed)
    examples = encode_trees(trees, tokenizer, max_length)
    device = next(model.parameters()).device
    head = DependencyHead(2 * model.config.hidden_size).to(device)
    train_kadapters(model, name)
    model.train()
    optimizer = torch.optim.AdamW([*kadapters(model)[name].parameters(), *head.parameters()], lr=lr)
    rng, order, losses = random.Random(seed), [], []
    for step in range(steps):
        if len(order) < batch_size:
            shuffled = list(range(len(examples)))
            rng.shuffle(shuffled)
            order += shuffled
        batch = collate_trees([examples[i] for i in order[:batch_size]], tokenizer.pad_token_id)
        del order[:batch_size]
        batch = {key: value.to(device) for key, value in batch.items()}
        features = knowledge_features(model, [name], batch["input_ids"], batch["attention_mask"])
        loss = dependency_loss(head(features, batch["attention_mask"]), batch["labels"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % log_every == 0 or step + 1 == steps:
            log.info("K-adapter %s: step %d/%d, dependency loss %.4f", name, step + 1, steps, loss.item())
    model.eval()
    return head, losses
