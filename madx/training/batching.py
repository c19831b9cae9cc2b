"""Which examples each optimizer step takes, and how a global batch is split over processes.

Batches are a pure function of (seed, step): every optimizer step takes the same global batch
whether it runs on 1 process or N, with or without gradient accumulation, and a resumed run
continues exactly where a checkpoint left it.
"""

from __future__ import annotations

import torch


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


class StepIndices:
    """The global example indices of each optimizer step: consecutive slices of per-epoch shuffles."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self._epoch, self._order = None, None

    def __call__(self, step: int) -> list[int]:
        out = []
        for position in range(step * self.batch_size, (step + 1) * self.batch_size):
            epoch = position // self.n
            if epoch != self._epoch:
                self._epoch, self._order = epoch, epoch_order(self.n, self.seed, epoch)
            out.append(int(self._order[position % self.n]))
        return out


def shard(batch: dict, world_size: int, rank: int, grad_accum: int) -> list[dict]:
    """Split one global batch (dict of tensors, first dim = examples) into this process's micro-batches."""
    n = next(iter(batch.values())).shape[0]
    micro = n // (world_size * grad_accum)
    out = []
    for a in range(grad_accum):
        start = (a * world_size + rank) * micro
        out.append({k: v[start : start + micro] for k, v in batch.items()})
    return out
