"""The training loop shared by language-adapter (MLM), task and base-model training.

Losses are sums over the predicted tokens divided by the global count, so N processes compute the
same gradient as one. Losses stay on the device until a log line, evaluation or checkpoint reads them
back (and stops on a non-finite one), so the host never waits for the GPU between steps. Batches come
from batching.py (a pure function of seed and step), checkpoints from checkpoints.py.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..core.settings import TrainSettings
from ..core.tensors import without_full_mask
from .accelerator import TrainingError, compiled, make_optimizer
from .batching import shard
from .checkpoints import Checkpoints
from .progress import PendingLosses, Progress

log = logging.getLogger(__name__)


def optimizer_step(wrapped, micro_batches: list, scale: float, accelerator, settings: TrainSettings,
                   params: list, optimizer) -> tuple[torch.Tensor, int]:
    """Forward/backward over this process's micro-batches (gradient sync on the last), clip, step.
    Returns (summed loss on this process, tokens seen)."""
    loss_sum = torch.zeros((), device=accelerator.device)
    tokens = 0
    cuda = accelerator.device.type == "cuda"
    for i, micro in enumerate(micro_batches):
        tokens += int(micro["attention_mask"].sum())  # on the CPU copy: no device sync
        micro = without_full_mask(micro)
        # pinned host memory makes the copy truly asynchronous (a pageable one waits for the GPU to drain)
        micro = {k: (v.pin_memory() if cuda else v).to(accelerator.device, non_blocking=True) for k, v in micro.items()}
        last = i == len(micro_batches) - 1
        with accelerator.no_sync(wrapped) if not last and accelerator.num_processes > 1 else contextlib.nullcontext():
            with accelerator.autocast():
                loss = wrapped(**micro)
            accelerator.backward(loss * scale)
        loss_sum += loss.detach().float()
    if settings.max_grad_norm:
        accelerator.clip_grad_norm_(params, settings.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum, tokens


def linear_schedule(optimizer, warmup_steps: int, max_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (max_steps - step) / max(1, max_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fit(
    objective: nn.Module,
    global_batch: Callable[[int], tuple[dict, int]],
    settings: TrainSettings,
    work_dir: Path,
    accelerator,
    evaluate: Callable[[int], dict] | None = None,
    groups: list[dict] | None = None,
) -> int:
    """Train `objective` (forward(**micro_batch) -> summed loss) for settings.max_steps optimizer steps.

    global_batch(step) -> (batch of tensors for all processes, number of predicted tokens in it).
    evaluate(step) -> metrics dict, run on every process every settings.eval_every steps and at the end.
    groups: optimizer parameter groups with their own options ({"params": [...], "lr": ..., "weight_decay": ...});
    every other trainable parameter is in the default group (settings.lr, settings.weight_decay).
    Returns the step trained to. Checkpoints and train_log.jsonl live in work_dir.
    (One function on purpose: the order of a step's work, train, read the losses back, evaluate, checkpoint,
    is what an exact resume rests on, and it reads top to bottom here.)
    """
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    params, optimizer = _optimizer(objective, groups, settings, accelerator.device)
    scheduler = linear_schedule(optimizer, settings.warmup_steps, settings.max_steps)
    checkpoints = Checkpoints(work_dir / "checkpoints")
    start = 0
    latest = checkpoints.latest()
    if latest is not None:
        start = checkpoints.load(latest, objective, optimizer, scheduler, accelerator)
        log.info("resuming from %s (step %d)", latest, start)
    wrapped, optimizer = accelerator.prepare(objective, optimizer)
    if settings.compile:  # every batch has the same shapes (MLM) or few (task): one graph, compiled on step one
        log.info("torch.compile (mode %s): the first step compiles the training graph (a minute or so)",
                 settings.compile)
        wrapped = compiled(wrapped, settings.compile)
    world, rank = accelerator.num_processes, accelerator.process_index
    progress = Progress(accelerator, settings.max_steps, start, work_dir / "train_log.jsonl", settings.log_every)
    wrapped.train()
    pending = PendingLosses(checkpoints)
    try:
        for step in range(start, settings.max_steps):
            batch, n_predicted = global_batch(step)
            scale = world / max(n_predicted, 1)  # DDP averages over processes: this makes it a global token mean
            micro_batches = shard(batch, world, rank, settings.grad_accum)
            loss_sum, tokens = optimizer_step(wrapped, micro_batches, scale, accelerator, settings, params, optimizer)
            pending.add(step, accelerator.reduce(loss_sum, reduction="sum"), n_predicted, scheduler.get_last_lr()[0])
            scheduler.step()
            progress.advance(tokens * world)
            last = step + 1 == settings.max_steps
            evaluating = evaluate is not None and (
                last or (settings.eval_every and (step + 1) % settings.eval_every == 0))
            saving = (step + 1) % settings.save_every == 0 and not last
            logging_now = (step + 1) % settings.log_every == 0 or len(pending.steps) >= PendingLosses.MAX
            if not (last or evaluating or saving or logging_now):
                continue
            # read the losses back: never evaluate, checkpoint or finish on a non-finite loss
            losses = pending.read()
            for done, loss, lr in losses[:-1]:
                progress.report(done, loss, lr)
            extra = None
            if evaluating:
                wrapped.eval()
                extra = evaluate(step + 1)
                wrapped.train()
            progress.report(*losses[-1], extra)
            if saving:
                checkpoints.save(step + 1, objective, optimizer, scheduler, accelerator)
    finally:
        progress.close()
    return settings.max_steps


def _optimizer(objective: nn.Module, groups: list[dict] | None, settings: TrainSettings, device) -> tuple[list, object]:
    """The trainable parameters and their optimizer: `groups` with their own options, the rest in the default group."""
    params = [p for p in objective.parameters() if p.requires_grad]
    if not params:
        raise TrainingError("nothing to train: no parameter requires a gradient")
    grouped = {id(p) for group in groups or () for p in group["params"]}
    default = [p for p in params if id(p) not in grouped]
    return params, make_optimizer([{"params": default}, *(groups or ())] if groups else params, settings, device)


def settings_dict(settings: TrainSettings) -> dict:
    return asdict(settings)
