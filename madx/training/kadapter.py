"""Training a K-adapter on its knowledge task (madx/tasks/knowledge.py: dependency heads, or relations between
spans): the K-adapter and the task's head train, the encoder and every other adapter stay frozen
(madx/adapters/kadapter.py)."""

from __future__ import annotations

import logging
import random

import torch

from ..adapters.kadapter import kadapters, knowledge_features, train_kadapters
from ..tasks.knowledge import KNOWLEDGE_TASKS

log = logging.getLogger(__name__)


def train_kadapter(model, name: str, task: str, examples: list, tokenizer, *, steps: int = 100,
                   batch_size: int = 16, lr: float = 1e-3, max_length: int = 128, seed: int = 1, log_every: int = 10):
    """Train K-adapter `name` (already added) on knowledge task `task` ("dependency": trees from read_conllu;
    "relation": examples from read_relations); returns the task (its `head` trained) and every step's loss.
    Batches are drawn from a shuffle seeded by `seed`, epoch after epoch."""
    if name not in kadapters(model):
        raise ValueError(f"no K-adapter {name!r} in the model: add it first (madx.add_kadapter)")
    if task not in KNOWLEDGE_TASKS:
        raise ValueError(f"knowledge task {task!r}: one of {', '.join(KNOWLEDGE_TASKS)}")
    torch.manual_seed(seed)
    knowledge = KNOWLEDGE_TASKS[task](examples, 2 * model.config.hidden_size)
    encoded = knowledge.encode(examples, tokenizer, max_length)
    device = next(model.parameters()).device
    knowledge.head.to(device)
    train_kadapters(model, name)
    model.train()
    optimizer = torch.optim.AdamW([*kadapters(model)[name].parameters(), *knowledge.head.parameters()], lr=lr)
    rng, order, losses = random.Random(seed), [], []
    for step in range(steps):
        if len(order) < batch_size:
            shuffled = list(range(len(encoded)))
            rng.shuffle(shuffled)
            order += shuffled
        batch = knowledge.collate([encoded[i] for i in order[:batch_size]], tokenizer.pad_token_id)
        del order[:batch_size]
        batch = {key: value.to(device) for key, value in batch.items()}
        loss = knowledge.loss(knowledge_features(model, [name], batch["input_ids"], batch["attention_mask"]), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % log_every == 0 or step + 1 == steps:
            log.info("K-adapter %s (%s): step %d/%d, loss %.4f", name, task, step + 1, steps, loss.item())
    model.eval()
    return knowledge, losses
