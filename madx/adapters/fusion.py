"""AdapterFusion (Pfeiffer et al., EACL 2021): frozen adapters combined, in every layer, by a learned attention over
their outputs.

In one layer with sub-layer output r and input x, the fused adapters A_1..A_n read z (LN(r + x) for Pfeiffer
adapters, r for Houlsby's) and the fusion computes, as AdapterHub's BertFusion does:

    u_i = A_i(z)                                      (each adapter's bottleneck output, without its residual)
    k_i = K u_i,  q = Q z  (Q r with query_before_ln)
    a = softmax_i(q . k_i / T)
    out = sum_i a_i V u_i + r                         (V: the value matrix; "static" fusions have none)

and the layer ends in LN(out + x) like any adapter. "dynamic" (the paper's and AdapterHub's default) starts V as the
identity (1e-6 off the diagonal) and adds 0.01 * ||I - V||^2 per layer to the training loss (`fusion_regularization_loss`).
With `residual_before`, r is added to every u_i before the keys and values are computed.

Where madx departs from AdapterHub 1.3.0, on purpose: the temperature (`temperature: true`, not in either preset)
anneals in training forwards only (AdapterHub's also in evaluation), and where it stands is saved with the fusion
(`madx_temperature`) but not in training checkpoints; `dropout_prob: 0` means no dropout (AdapterHub's reads 0 as
unset and takes the model's attention dropout). Neither changes what a trained fusion computes in evaluation.

On disk (fusion_io.py) a fusion is AdapterHub's fusion directory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from ..core.errors import InputError
from ..core.setups import DEFAULT_FUSION
from .composition import Fuse
from .model import base_model, drop_fusion, head_modules, madx_state

REGULARIZATION = 0.01  # AdapterHub's weight of ||I - V||^2 per layer


@dataclass(frozen=True)
class FusionConfig:
    """AdapterHub's AdapterFusionConfig, field for field; `FusionConfig.preset("dynamic" | "static")`."""

    key: bool = True  # a key matrix K on the adapters' outputs
    query: bool = True  # a query matrix Q on the layer's input to the adapters
    value: bool = True  # a value matrix V
    query_before_ln: bool = False  # the query reads r, not LN(r + x)
    regularization: bool = True  # 0.01 * ||I - V||^2 per layer in the training loss
    residual_before: bool = False  # r added to each adapter output before keys and values, not after the fusion
    temperature: bool = False  # softmax temperature from 50 down to 1 by 0.05 per training forward pass
    value_before_softmax: bool = True  # V on each adapter's output, not on the weighted sum
    value_initialized: bool = True  # V starts as the identity
    dropout_prob: float | None = None  # dropout on the attention scores; None: the model's attention dropout

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "dropout_prob":
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                          or not 0 <= value < 1):
                    raise InputError(f"fusion config: dropout_prob={value!r} must be null or a number in [0, 1)")
            elif not isinstance(value, bool):
                raise InputError(f"fusion config: {f.name}={value!r} must be true or false")
        if not (self.key or self.query or self.value):
            raise InputError("fusion config: key, query and value are all false; madx fuses with at least one of "
                             "the three matrices (the presets 'static' and 'dynamic' have key and query)")

    @classmethod
    def preset(cls, config: str | dict | FusionConfig) -> FusionConfig:
        """"dynamic", "static", a dict of AdapterHub's keys (missing keys from "dynamic"), or a FusionConfig."""
        if isinstance(config, FusionConfig):
            return config
        if isinstance(config, str):
            if config not in PRESETS:
                raise InputError(f"fusion config {config!r}: use one of {sorted(PRESETS)} or a dict of its keys")
            return PRESETS[config]
        if isinstance(config, dict):
            unknown = sorted(set(config) - {f.name for f in fields(cls)})
            if unknown:
                raise InputError(f"fusion config: unknown keys {unknown}; AdapterFusion's keys are "
                                 f"{[f.name for f in fields(cls)]}")
            return cls(**config)
        raise InputError(f"fusion config must be 'dynamic', 'static' or a dict, got {type(config).__name__}")

    def to_adapterhub(self) -> dict:
        return dict(sorted(asdict(self).items()))


PRESETS = {  # core/setups.py FUSION_PRESETS names them for the config and the CLI (tests/test_fusion.py)
    "dynamic": FusionConfig(),
    "static": FusionConfig(value=False, regularization=False, value_initialized=False),
}


class FusionLayer(nn.Module):
    """One layer's attention over its fused adapters' outputs (see the module docstring for what it computes)."""

    def __init__(self, hidden_size: int, config: FusionConfig, dropout_prob: float):
        super().__init__()
        self.config = config
        self.dropout = nn.Dropout(dropout_prob)
        if config.query:
            self.query = self._linear(hidden_size, bias=True)
        if config.key:
            self.key = self._linear(hidden_size, bias=True)
        if config.value:
            self.value = self._linear(hidden_size, bias=False)
            if config.value_initialized:
                with torch.no_grad():
                    self.value.weight.fill_(1e-6).fill_diagonal_(1.0)
        self.temperature = 50.0 if config.temperature else 1.0
        self._step = self.temperature / 1000.0

    @staticmethod
    def _linear(size: int, bias: bool) -> nn.Linear:
        linear = nn.Linear(size, size, bias=bias)
        nn.init.normal_(linear.weight, std=0.02)  # BERT's initialisation, as AdapterHub's fusion has it
        if bias:
            nn.init.zeros_(linear.bias)
        return linear

    def forward(self, r: torch.Tensor, x: torch.Tensor, layer_norm, adapters: list) -> torch.Tensor:
        config = self.config
        z = layer_norm(r + x) if adapters[-1].ln_before else r  # (B, T, h)
        query = r if config.query_before_ln else z
        ups = torch.stack([adapter.bottleneck(z) for adapter in adapters], dim=2)  # (B, T, n, h)
        if config.residual_before:
            ups = ups + r.unsqueeze(2)
        q = self.query(query) if config.query else query
        k = self.key(ups) if config.key else ups
        v = self.value(ups) if config.value and config.value_before_softmax else ups
        scores = self.dropout(torch.einsum("bth,btnh->btn", q, k))
        probs = torch.softmax(scores / self.temperature, dim=-1)
        if self.training:
            self.temperature = max(self.temperature - self._step, 1.0)
        out = torch.einsum("btn,btnh->bth", probs, v)
        if config.value and not config.value_before_softmax:
            out = self.value(out)
        return out if config.residual_before else out + r


def fusion_modules(model: nn.Module, fusion: str) -> dict:
    """{path relative to the base model: module} of every layer of fusion `fusion` ("a,b")."""
    state = madx_state(model)
    if fusion not in state.fusions:
        raise KeyError(f"no fusion named {fusion!r}; the model has {sorted(state.fusions) or 'none'}")
    return {f"{state.module_path(layer, kind)}.adapter_fusion_layer.{fusion}": wrapper.adapter_fusion_layer[fusion]
            for (layer, kind), wrapper in state.outputs.items() if fusion in wrapper.adapter_fusion_layer}


def fusion_name(names) -> str:
    """A fusion's name ("a,b") from its adapter names, a Fuse, or the name itself."""
    return Fuse.of(names).name


def add_fusion(model: nn.Module, names, config: str | dict | FusionConfig = DEFAULT_FUSION) -> str:
    """A fusion of the model's adapters `names` (in this order) in every layer that has them; returns its name
    ("a,b", AdapterHub's). Inactive until activated, e.g. `activate(model, "sw", Fuse("a", "b"))`."""
    fuse = Fuse.of(names)
    config = FusionConfig.preset(config)
    state = madx_state(model)
    missing = [n for n in fuse.names if n not in state.configs]
    if missing:
        raise KeyError(f"cannot fuse {list(fuse.names)}: no adapter named {missing}; the model has "
                       f"{sorted(state.configs) or 'none'}")
    if fuse.name in state.fusions:
        raise ValueError(f"fusion {fuse!r} already exists; delete_fusion() it first")
    layouts = {n: (state.configs[n].architecture, state.configs[n].leave_out) for n in fuse.names}
    if len(set(layouts.values())) > 1:
        raise InputError(f"cannot fuse adapters placed differently in the layers (architecture, leave_out): "
                         f"{layouts}; fuse adapters of one architecture and one leave_out")
    dropout = config.dropout_prob if config.dropout_prob is not None else \
        getattr(model.config, "attention_probs_dropout_prob", 0.0)
    ref = next(base_model(model).parameters())
    for wrapper in state.outputs.values():
        if all(n in wrapper.adapters for n in fuse.names):
            layer = FusionLayer(model.config.hidden_size, config, dropout).to(device=ref.device, dtype=ref.dtype)
            wrapper.adapter_fusion_layer[fuse.name] = layer.train(model.training)
    state.fusions[fuse.name] = config
    return fuse.name


def delete_fusion(model: nn.Module, names) -> None:
    """Remove the fusion of `names` (its adapters stay)."""
    state = madx_state(model)
    name = fusion_name(names)
    if name not in state.fusions:
        raise KeyError(f"no fusion named {name!r}; the model has {sorted(state.fusions) or 'none'}")
    drop_fusion(state, name)


def fusion_config(model: nn.Module, names) -> FusionConfig:
    state = madx_state(model)
    name = fusion_name(names)
    if name not in state.fusions:
        raise KeyError(f"no fusion named {name!r}; the model has {sorted(state.fusions) or 'none'}")
    return state.fusions[name]


def train_fusion(model: nn.Module, names) -> None:
    """Freeze everything except the fusion of `names` and a task head: the fused adapters stay as they are."""
    modules = fusion_modules(model, fusion_name(names))
    model.requires_grad_(False)
    for module in [*modules.values(), *head_modules(model).values()]:
        module.requires_grad_(True)


def fusion_regularization_loss(model: nn.Module) -> torch.Tensor:
    """0.01 * ||I - V||^2 summed over the layers of every fusion being trained whose config asks for it (the dynamic
    fusion's pull of the value matrix towards the identity); a zero when there is none (a static fusion)."""
    state = madx_state(model)
    loss = torch.zeros((), device=next(model.parameters()).device)
    for name, config in state.fusions.items():
        if not (config.value and config.regularization):
            continue
        for layer in fusion_modules(model, name).values():
            weight = layer.value.weight
            if weight.requires_grad:
                eye = torch.eye(weight.shape[0], device=weight.device, dtype=weight.dtype)
                loss = loss + REGULARIZATION * (eye - weight).pow(2).sum().float()
    return loss
