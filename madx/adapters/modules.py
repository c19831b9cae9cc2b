"""The adapter modules: a bottleneck adapter and the NICE invertible adapter.

Parameter names (adapter_down.0, adapter_up, F.0, F.2, G.0, G.2) are AdapterHub's, so state
dicts map one-to-one onto its files.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import AdapterConfig


def activation(name: str) -> nn.Module:
    return {
        "relu": nn.ReLU,
        "gelu": nn.GELU,
        "gelu_new": lambda: nn.GELU(approximate="tanh"),
        "swish": nn.SiLU,
    }[name]()


def _zero_(linear: nn.Linear) -> None:
    # Zero output projection: the module starts as the identity, so the adapted model computes
    # exactly the base model's function before training (near-identity init).
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)


class BottleneckAdapter(nn.Module):
    """A(z) = U(act(D(z))), with its residual and the pretrained LayerNorm placed as AdapterHub does.

    Pfeiffer (seq_bn):       a = A(LN(r + x)) + r
    Houlsby (double_seq_bn): a = A(r) + r
    where r is the sub-layer's output (or the previous adapter's, in a Stack) and x its input.
    """

    def __init__(self, hidden_size: int, config: AdapterConfig):
        super().__init__()
        bottleneck = config.bottleneck_size(hidden_size)
        self.ln_before = config.architecture == "pfeiffer"
        self.adapter_down = nn.Sequential(nn.Linear(hidden_size, bottleneck), activation(config.non_linearity))
        self.adapter_up = nn.Linear(bottleneck, hidden_size)
        nn.init.kaiming_uniform_(self.adapter_down[0].weight, a=math.sqrt(5))
        nn.init.zeros_(self.adapter_down[0].bias)
        _zero_(self.adapter_up)

    def bottleneck(self, z: torch.Tensor) -> torch.Tensor:
        """A(z) = U(act(D(z)))."""
        return self.adapter_up(self.adapter_down(z))

    def forward(self, r: torch.Tensor, x: torch.Tensor, layer_norm: nn.Module) -> torch.Tensor:
        z = layer_norm(r + x) if self.ln_before else r  # (B, T, h)
        return self.bottleneck(z) + r


class NICEInvertibleAdapter(nn.Module):
    """NICE coupling on the embeddings: y1 = x1 + F(x2), y2 = x2 + G(y1); `inverse` undoes it exactly."""

    def __init__(self, hidden_size: int, config: AdapterConfig):
        super().__init__()
        self.split = hidden_size // 2
        len1, len2 = self.split, hidden_size - self.split
        self.F = self._subnet(len2, len1, config)
        self.G = self._subnet(len1, len2, config)

    @staticmethod
    def _subnet(dims_in: int, dims_out: int, config: AdapterConfig) -> nn.Sequential:
        hidden = int(dims_in // config.inv_reduction_factor)
        net = nn.Sequential(nn.Linear(dims_in, hidden), activation(config.non_linearity), nn.Linear(hidden, dims_out))
        _zero_(net[2])
        return net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x[..., : self.split], x[..., self.split :]
        y1 = x1 + self.F(x2)
        y2 = x2 + self.G(y1)
        return torch.cat((y1, y2), dim=-1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y1, y2 = y[..., : self.split], y[..., self.split :]
        x2 = y2 - self.G(y1)
        x1 = y1 - self.F(x2)
        return torch.cat((x1, x2), dim=-1)
