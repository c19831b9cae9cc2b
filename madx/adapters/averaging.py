"""What an Average computes (composition.Average names it): in every layer the weighted mean of its adapters'
outputs on the same input, and on the embeddings the weighted mean of their invertible adapters.

    Average(a, b; w):   r' = Σ_i w_i · A_i(r, x)       (A_i(r, x) = U_i(D_i(LN(r + x))) + r for Pfeiffer adapters,
                                                      so r' = r + Σ_i w_i · U_i(D_i(LN(r + x))); a layer that
                                                      leaves some A_i out averages those it has, their
                                                      weights renormalised, as AdapterHub's does)
    on the embeddings:  e' = Σ_i w_i · Inv_i(e)       (AdapterHub's Average applies the first adapter's alone)
"""

from __future__ import annotations

import torch


def averaged(r: torch.Tensor, x: torch.Tensor, layer_norm, adapters: list) -> torch.Tensor:
    """Σ w·adapter(r, x) over the (adapter, w) this layer has, the weights renormalised to sum 1 among them."""
    total = sum(weight for _, weight in adapters)
    out = None
    for adapter, weight in adapters:
        term = adapter(r, x, layer_norm) * (weight / total)
        out = term if out is None else out + term
    return out


class AveragedInvertible:
    """The invertible adapters of an Average's adapters as one: the weighted mean of their outputs on the
    embeddings (an adapter without one counts as the identity), and before the MLM head the weighted mean of
    their inverses: the exact inverse for one adapter, an approximation of the mean's inverse for several."""

    def __init__(self, parts: list):
        self.parts = parts  # [(NICEInvertibleAdapter or None, weight)]

    def _mean(self, x: torch.Tensor, apply) -> torch.Tensor:
        return sum(weight * (apply(inv, x) if inv is not None else x) for inv, weight in self.parts)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._mean(x, lambda inv, v: inv(v))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self._mean(y, lambda inv, v: inv.inverse(v))
