"""How many parameters: those of a model in memory by part (base, each adapter, each fusion, trainable), and those
a weights directory madx or AdapterHub wrote holds on disk (read from the files' headers, nothing loaded)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..core.errors import InputError
from .fusion import fusion_modules
from .model import adapter_modules, existing_state

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")  # safetensors, AdapterHub's legacy pickles, madx's embeddings


@dataclass(frozen=True)
class ParameterCount:
    trainable: int
    total: int
    adapters: dict  # name -> parameters of that adapter (its invertible adapter included)
    fusions: dict = field(default_factory=dict)  # fusion name ("a,b") -> parameters of its fusion layers

    @property
    def base(self) -> int:
        return self.total - sum(self.adapters.values()) - sum(self.fusions.values())

    def __str__(self) -> str:  # one line: it goes into logs
        parts = [f"trainable {self.trainable:,} of {self.total:,} ({100 * self.trainable / max(self.total, 1):.2f}%)"]
        parts += [f"adapter {n} {c:,} ({100 * c / max(self.base, 1):.2f}% of the base)" for n, c in self.adapters.items()]
        parts += [f"fusion {n} {c:,} ({100 * c / max(self.base, 1):.2f}% of the base)" for n, c in self.fusions.items()]
        return "; ".join(parts)


def count_parameters(model: nn.Module) -> ParameterCount:
    params = list(model.parameters())
    adapters, fusions = {}, {}
    state = existing_state(model)
    if state is not None:
        for name in state.configs:
            adapters[name] = sum(p.numel() for m in adapter_modules(model, name).values() for p in m.parameters())
        for name in state.fusions:
            fusions[name] = sum(p.numel() for m in fusion_modules(model, name).values() for p in m.parameters())
    return ParameterCount(
        trainable=sum(p.numel() for p in params if p.requires_grad),
        total=sum(p.numel() for p in params),
        adapters=adapters,
        fusions=fusions,
    )


def stored_parameters(directory: str | Path) -> int:
    """The parameters the weights files directly in `directory` hold (subfolders, e.g. a fusion's copies of the
    adapters it fuses, are their own artifacts). safetensors are counted from their header; pickles (AdapterHub's
    legacy .bin, madx's embedding.pt) are opened with weights_only and memory-mapped, and a .bin beside
    safetensors is taken for the same weights in the older format (a hub snapshot often has both)."""
    from safetensors import SafetensorError, safe_open

    files = sorted(p for p in Path(directory).iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if any(p.suffix == ".safetensors" for p in files):
        files = [p for p in files if p.suffix != ".bin"]
    total = 0
    for path in files:
        try:
            if path.suffix == ".safetensors":
                with safe_open(path, "pt") as weights:
                    total += sum(_numel(weights.get_slice(key).get_shape()) for key in weights.keys())
                continue
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except (SafetensorError, OSError, RuntimeError, ValueError, pickle.UnpicklingError) as err:
            raise InputError(f"{path}: cannot be read as weights ({type(err).__name__}: {err}); the file is truncated "
                             "or corrupt: retrain or download it again") from None
        tensors = state.values() if isinstance(state, dict) else [state]  # embedding.pt: one matrix
        total += sum(t.numel() for t in tensors if isinstance(t, torch.Tensor))
    return total


def _numel(shape) -> int:
    n = 1
    for size in shape:
        n *= size
    return n
