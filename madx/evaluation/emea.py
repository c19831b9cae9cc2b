"""EMEA (Wang et al., Findings of EMNLP 2021, "Efficient Test Time Adapter Ensembling for Low-resource Language
Varieties"): an Average of language adapters whose weights are learned on each test batch, with no labels.

For every batch: the weights start uniform (scores 0 at every position: each layer's attention and output
adapters, and the invertible adapters on the embeddings), take `steps` gradient steps of size `lr` on the mean
entropy of the model's predictions on that batch, and the batch is then predicted with them. Only the scores move
(the adapters, the head and the base stay as they are); nothing is drawn at random, so a run is repeatable (on the
CPU exactly). The weights are softmax(scores) per position, one score per adapter: the paper's per-layer ensemble
weights.
"""

from __future__ import annotations

import torch
from torch import nn

from ..adapters.composition import EMBEDDINGS, Average
from ..adapters.model import madx_state
from ..core.settings import EmeaSettings
from ..tasks.families import prediction_entropy


class TestTimeWeights:
    """The Average of adapters `names` in `model` with weights learned per test batch; call it on a batch before
    predicting it (families.predict's `adapt`)."""

    def __init__(self, model: nn.Module, names: list[str], settings: EmeaSettings):
        device = next(model.parameters()).device
        positions = [*madx_state(model).outputs, EMBEDDINGS]
        self.scores = {p: torch.zeros(len(names), device=device) for p in positions}
        self.average = Average(*names, scores=self.scores)
        self.model, self.settings = model, settings
        self.entropies: list[float] = []  # per batch: the predictions' entropy with uniform weights
        self._weights = torch.zeros(len(names), device=device)  # the sum over batches of the mean over positions
        self._batches = 0

    def __call__(self, batch: dict) -> None:
        for score in self.scores.values():
            score.zero_()
        leaves = list(self.scores.values())
        before = None
        for _ in range(self.settings.steps):
            with torch.enable_grad():
                for score in leaves:
                    score.requires_grad_(True)
                entropy = prediction_entropy(self.model(**batch), batch)
                grads = torch.autograd.grad(entropy, leaves, allow_unused=True)
            before = float(entropy) if before is None else before
            with torch.no_grad():
                for score, grad in zip(leaves, grads):
                    if grad is not None:
                        score.sub_(self.settings.lr * grad)
        for score in leaves:
            score.requires_grad_(False)
        learned = [score for score, grad in zip(leaves, grads) if grad is not None] or leaves
        with torch.no_grad():  # the mean over the positions some adapter is at (not a left-out layer's)
            weights = torch.stack([torch.softmax(score, dim=0) for score in learned]).mean(0)
        self.entropies.append(before)
        self._weights += weights
        self._batches += 1

    def record(self) -> dict:
        """For the result JSON: each adapter's learned weight (mean over batches and positions), the predictions' mean
        entropy with uniform weights (before the steps), the steps and their size."""
        n = max(self._batches, 1)
        return {"weights": dict(zip(self.average.names, (round(float(w) / n, 6) for w in self._weights))),
                "uniform_entropy": sum(self.entropies) / n, "steps": self.settings.steps, "lr": self.settings.lr,
                "batches": self._batches}
