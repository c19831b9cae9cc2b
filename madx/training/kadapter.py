"""Training a K-adapter on its knowledge task (madx/tasks/knowledge.py: dependency heads, or relations between
spans): the K-adapter and the task's head train, the encoder and every other adapter stay frozen
(madx/adapters/kadapter.py). `madx train-kadapter` (the workflow's rule train_kadapter) writes its directory."""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path

import torch

from ..adapters.kadapter import KAdapterConfig, add_kadapter, kadapters, knowledge_features, save_kadapter, \
    train_kadapters
from ..core.errors import InputError
from ..core.settings import KnowledgeTraining
from ..data import hub
from ..tasks.knowledge import KNOWLEDGE_TASKS
from .loop import settings_dict

log = logging.getLogger(__name__)

KNOWLEDGE_RECORD = "knowledge.json"  # beside the K-adapter's files: how it was trained and its dev scores


def train_kadapter(model, name: str, task: str, examples: list, tokenizer, *, settings: KnowledgeTraining =
                   KnowledgeTraining(), dev: list | None = None):
    """Train K-adapter `name` (already added) on knowledge task `task` ("dependency": trees from read_conllu;
    "relation": examples from read_relations); returns the task (its `head` trained), every step's loss and the dev
    scores at each evaluation. With `dev`, the weights of the best dev score are kept. Batches are drawn from a
    shuffle seeded by settings.seed, epoch after epoch."""
    if name not in kadapters(model):
        raise InputError(f"no K-adapter {name!r} in the model: add it first (madx.add_kadapter)")
    if task not in KNOWLEDGE_TASKS:
        raise InputError(f"knowledge task {task!r}: one of {', '.join(KNOWLEDGE_TASKS)}")
    torch.manual_seed(settings.seed)
    knowledge = KNOWLEDGE_TASKS[task](examples, 2 * model.config.hidden_size)
    encoded = knowledge.encode(examples, tokenizer, settings.max_length)
    dev_encoded = knowledge.encode(dev, tokenizer, settings.max_length) if dev else None
    device = next(model.parameters()).device
    knowledge.head.to(device)
    train_kadapters(model, name)
    trained = [kadapters(model)[name], knowledge.head]
    optimizer = torch.optim.AdamW([p for module in trained for p in module.parameters()], lr=settings.lr)
    rng, order, losses, evaluations, best = random.Random(settings.seed), [], [], [], None
    started = time.monotonic()
    for step in range(1, settings.max_steps + 1):
        model.train()
        knowledge.head.train()
        if len(order) < settings.batch_size:
            shuffled = list(range(len(encoded)))
            rng.shuffle(shuffled)
            order += shuffled
        batch = _on(knowledge.collate([encoded[i] for i in order[:settings.batch_size]], tokenizer.pad_token_id),
                    device)
        del order[:settings.batch_size]
        loss = knowledge.loss(knowledge_features(model, [name], batch["input_ids"], batch["attention_mask"]), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % settings.log_every == 0 or step == settings.max_steps:
            eta = (time.monotonic() - started) / step * (settings.max_steps - step)
            log.info("K-adapter %s (%s): step %d/%d, loss %.4f, ETA %.0f s", name, task, step, settings.max_steps,
                     loss.item(), eta)
        if dev and ((settings.eval_every and step % settings.eval_every == 0) or step == settings.max_steps):
            scores = evaluate_kadapter(model, name, knowledge, dev, dev_encoded, tokenizer.pad_token_id,
                                       settings.batch_size)
            evaluations.append({"step": step, **scores})
            log.info("K-adapter %s: dev %s %.4f at step %d (trivial baseline %.4f)", name, knowledge.metric,
                     scores[knowledge.metric], step, scores[f"baseline_{knowledge.metric}"])
            if best is None or scores[knowledge.metric] > best[0]:
                best = (scores[knowledge.metric], [{k: v.clone() for k, v in m.state_dict().items()} for m in trained])
    if best is not None:
        for module, state in zip(trained, best[1]):
            module.load_state_dict(state)
    model.eval()
    return knowledge, losses, evaluations


def _on(batch: dict, device) -> dict:
    return {key: value.to(device) for key, value in batch.items()}


@torch.no_grad()
def evaluate_kadapter(model, name: str, knowledge, examples: list, encoded: list[dict], pad_id: int,
                      batch_size: int = 32) -> dict:
    """The knowledge task's scores on `examples` (UAS; accuracy and macro F1) with its trivial baseline."""
    model.eval()
    knowledge.head.eval()
    device = next(model.parameters()).device
    predicted = []
    for start in range(0, len(encoded), batch_size):
        batch = _on(knowledge.collate(encoded[start:start + batch_size], pad_id), device)
        features = knowledge_features(model, [name], batch["input_ids"], batch["attention_mask"])
        predicted += knowledge.predict(features, batch)
    return knowledge.scores(examples, encoded, predicted)


def train_kadapter_job(base_model: str, name: str, task: str, train: list[str], dev: list[str], output: str | Path,
                       config: KAdapterConfig, settings: KnowledgeTraining, trust_remote_code: bool = False) -> Path:
    """`madx train-kadapter`: K-adapter `name` beside the frozen base, trained on the knowledge task's `train` files
    (several languages' treebanks, say), its best dev checkpoint saved in `output` with knowledge.json (its data,
    settings, the dev scores and their trivial baseline, every evaluation) and train_log.jsonl."""
    reader = KNOWLEDGE_TASKS[task].read
    train_examples = [example for path in train for example in reader(path)]
    dev_examples = [example for path in dev for example in reader(path)]
    tokenizer = hub.load_tokenizer(base_model, trust_remote_code=trust_remote_code)
    model = hub.load_encoder(base_model, trust_remote_code=trust_remote_code)
    log.info("K-adapter %s (%s): %d training and %d dev examples from %s", name, task, len(train_examples),
             len(dev_examples), ", ".join(train))
    add_kadapter(model, name, config)
    _, losses, evaluations = train_kadapter(model, name, task, train_examples, tokenizer, settings=settings,
                                            dev=dev_examples)
    best = max(evaluations, key=lambda e: e[KNOWLEDGE_TASKS[task].metric])
    record = {"name": name, "task": task, "base_model": base_model, "train": list(train), "dev": list(dev),
              "train_examples": len(train_examples), "dev_examples": len(dev_examples),
              "settings": settings_dict(settings), "best": best, "evaluations": evaluations}
    train_log = "".join(json.dumps({"step": i + 1, "loss": round(loss, 6)}) + "\n" for i, loss in enumerate(losses))
    save_kadapter(model, name, output, {KNOWLEDGE_RECORD: json.dumps(record, indent=2) + "\n",
                                        "train_log.jsonl": train_log})
    metric = KNOWLEDGE_TASKS[task].metric
    log.info("K-adapter %s: best dev %s %.4f at step %d (trivial baseline %.4f) -> %s", name, metric, best[metric],
             best["step"], best[f"baseline_{metric}"], output)
    return Path(output)
