"""Putting adapters into a Hugging Face encoder: wrap, activate, freeze (counting.py counts them).

Each layer's two output blocks (attention output and FFN output: dense -> dropout -> LN(. + x))
are replaced by `AdaptedOutput`, which keeps the same `dense`, `dropout` and `LayerNorm` modules
(so base state-dict keys do not change) plus an `adapters` ModuleDict. The invertible adapters
live in `base_model.invertible_adapters`; a forward hook applies the first active one to the
embedding output, and a pre-hook its inverse to the input of the MLM output embeddings (a
wrapper there would fight transformers' weight tying).
"""

from __future__ import annotations

import contextlib
import functools
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from ..core.errors import InputError, MadxError
from .averaging import AveragedInvertible, averaged
from .composition import EMBEDDINGS, Average, Fuse, Group, adapter_names, flatten
from .config import AdapterConfig
from .modules import BottleneckAdapter, NICEInvertibleAdapter

SUPPORTED_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "deberta-v2")
TASK_HEAD_ATTRS = ("classifier", "qa_outputs")  # the output layer of *For{Token,Sequence}Classification, *ForMultipleChoice, *ForQuestionAnswering
_NAME = re.compile(r"^[A-Za-z0-9_\-+]+$")  # "+": a task reading K-adapters (ner+syntax)


class UnsupportedModelError(MadxError, TypeError):
    pass


class AdaptedOutput(nn.Module):
    """dense -> dropout -> [active adapters and fusions, stacked] -> LN(. + x)."""

    def __init__(self, block: nn.Module, state: "MadxState", position: tuple[int, str]):
        super().__init__()
        self.position = position  # (layer, "attention" | "output"): where an Average's own weights are read
        self.dense, self.dropout, self.LayerNorm = block.dense, block.dropout, block.LayerNorm
        self.adapters = nn.ModuleDict()
        self.adapter_fusion_layer = nn.ModuleDict()  # AdapterHub's attribute name: its state-dict keys are ours
        self.state = state  # shared, plain object: which adapters are active

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        r = self.dropout(self.dense(hidden_states))  # (B, T, h)
        blocks = [block for block in map(self._block, self.state.active) if block is not None]
        if all(isinstance(block, BottleneckAdapter) and block.ln_before for block in blocks):
            # Pfeiffer adapters (and none): each reads LN(r + x) and adds to r, so carry s = r + x itself;
            # one add per adapter instead of two, the same function
            s = r + input_tensor
            for adapter in blocks:
                s = s + adapter.bottleneck(self.norm(s))
            return self.norm(s)
        for block in blocks:
            r = block(r, input_tensor, self.norm)
        return self.norm(r + input_tensor)

    def _block(self, item):
        """What one item of the active stack computes here, as block(r, x, norm) -> r: an adapter, a fusion layer
        over its adapters, an average of adapters, or None where the layer has none of them (leave_out)."""
        if isinstance(item, Average):
            here = [(self.adapters[n], w) for n, w in zip(item.names, item.weights_at(self.position))
                    if n in self.adapters]
            return functools.partial(averaged, adapters=here) if here else None
        if isinstance(item, Fuse):
            if item.name not in self.adapter_fusion_layer:
                return None
            adapters = [self.adapters[n] for n in item.names]
            return functools.partial(self.adapter_fusion_layer[item.name], adapters=adapters)
        return self.adapters[item] if item in self.adapters else None

    def norm(self, s: torch.Tensor) -> torch.Tensor:
        """The pretrained LayerNorm, computed in its weights' dtype whatever autocast says.

        CUDA autocast runs layer_norm in fp32 and returns fp32: with the frozen base in bf16, the
        residual stream between layers would then be fp32 (twice the bytes for every add, dropout and
        norm, and a cast before every GEMM that reads it). In bf16 it is what a bf16 model computes;
        the kernel still accumulates its statistics in fp32. An fp32 base is unchanged."""
        return in_weight_dtype(self.LayerNorm, s)


def in_weight_dtype(layer_norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """layer_norm(x) in the dtype of the norm's weights, outside autocast (see AdaptedOutput.norm)."""
    weight = getattr(layer_norm, "weight", None)
    dtype = weight.dtype if weight is not None else x.dtype
    autocast = torch.is_autocast_enabled(x.device.type)
    with torch.autocast(x.device.type, enabled=False) if autocast else contextlib.nullcontext():
        return layer_norm(x.to(dtype))


@dataclass
class MadxState:
    """What madx added to one base model; kept so that `remove_adapters` can undo every change."""

    configs: dict = field(default_factory=dict)  # name -> AdapterConfig
    fusions: dict = field(default_factory=dict)  # fusion name ("a,b") -> fusion.FusionConfig
    active: tuple = ()  # the Stack's items, adapter names and Fuse blocks: first = language adapter
    outputs: dict = field(default_factory=dict)  # (layer index, "attention" | "output") -> AdaptedOutput
    invertible: nn.ModuleDict | None = None
    originals: list = field(default_factory=list)  # (parent, attribute, original module)
    hooks: list = field(default_factory=list)
    hooked: list = field(default_factory=list)  # modules carrying the inverse hook

    def first_invertible(self) -> NICEInvertibleAdapter | AveragedInvertible | None:
        """The invertible adapter applied: the first item's; a Fuse's first adapter's (AdapterHub's choice); an
        Average's, their weighted mean (AdapterHub's Average applies its first adapter's alone)."""
        first = self.active[0] if self.active else None
        if isinstance(first, Average):
            parts = [(self.invertible[n] if n in self.invertible else None, w)
                     for n, w in zip(first.names, first.weights_at(EMBEDDINGS))]
            return AveragedInvertible(parts) if any(inv is not None for inv, _ in parts) else None
        if isinstance(first, Fuse):
            first = first.names[0]
        return self.invertible[first] if first is not None and first in self.invertible else None

    def module_path(self, layer: int, kind: str) -> str:
        return f"encoder.layer.{layer}.attention.output" if kind == "attention" else f"encoder.layer.{layer}.output"


def base_model(model: nn.Module) -> nn.Module:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise UnsupportedModelError(
            f"madx does not support model type {model_type!r} ({type(model).__name__}); supported model types: "
            f"{', '.join(SUPPORTED_MODEL_TYPES)} (mBERT, RoBERTa, XLM-R, Glot500, XLM-V, mDeBERTa)"
        )
    return model.base_model


def num_layers(model: nn.Module) -> int:
    return len(base_model(model).encoder.layer)


def existing_state(model: nn.Module) -> MadxState | None:
    """The model's madx state if madx has wrapped it, else None (nothing is wrapped by asking, any model)."""
    return getattr(model, "base_model", model).__dict__.get("_madx")


def madx_state(model: nn.Module) -> MadxState:
    """The model's madx state, wrapping its layers on first use."""
    base = base_model(model)
    state = existing_state(model)
    if state is None:
        state = _wrap(base)
        base.__dict__["_madx"] = state
    _hook_output_embeddings(model, state)
    return state


def _wrap(base: nn.Module) -> MadxState:
    state = MadxState()
    for i, layer in enumerate(base.encoder.layer):
        for kind, parent, attr in (("attention", layer.attention, "output"), ("output", layer, "output")):
            block = getattr(parent, attr)
            if not all(hasattr(block, a) for a in ("dense", "dropout", "LayerNorm")):
                raise UnsupportedModelError(
                    f"{type(block).__name__} at layer {i} has no dense/dropout/LayerNorm; "
                    "this transformers version changed the layer layout madx wraps"
                )
            wrapper = AdaptedOutput(block, state, (i, kind))
            state.originals.append((parent, attr, block))
            setattr(parent, attr, wrapper)
            state.outputs[(i, kind)] = wrapper
    state.invertible = nn.ModuleDict()
    base.invertible_adapters = state.invertible

    def embeddings_hook(module, args, output):
        inv = state.first_invertible()
        output = output if inv is None else inv(output)
        # the embeddings' own LayerNorm ran under autocast (fp32 out on CUDA): hand layer 0 the base's dtype
        return output.to(module.word_embeddings.weight.dtype)

    state.hooks.append(base.embeddings.register_forward_hook(embeddings_hook))
    return state


def vocab_projection(model: nn.Module) -> tuple[nn.Module, str] | None:
    """Where the hidden states meet the projection onto the vocabulary, for the invertible adapter's inverse:
    (module, "input") when that module is the projection (its input is projected), or (module, "output") when
    the projection is no module call and this module computes what is projected. None without an MLM head."""
    lm_predictions = getattr(model, "lm_predictions", None)
    if lm_predictions is not None:
        # DeBERTa-v2/v3 with legacy=False: dense -> act -> LayerNorm -> @ word_embeddings.T + bias, in one
        # forward; get_output_embeddings() there is the dense transform, *before* the head's own transform
        return lm_predictions.lm_head.LayerNorm, "output"
    get_output = getattr(model, "get_output_embeddings", None)
    output_embeddings = get_output() if get_output else None
    return (output_embeddings, "input") if output_embeddings is not None else None


def _hook_output_embeddings(model: nn.Module, state: MadxState) -> None:
    """The first active invertible adapter's inverse, right before the projection onto the vocabulary."""
    where = vocab_projection(model)
    if where is None or any(module is where[0] for module in state.hooked):
        return
    module, side = where

    def inverse_hook(module, args):
        inv = state.first_invertible()
        return args if inv is None else (inv.inverse(args[0]), *args[1:])

    def inverse_output_hook(module, args, output):
        inv = state.first_invertible()
        return output if inv is None else inv.inverse(output)

    if side == "input":
        state.hooks.append(module.register_forward_pre_hook(inverse_hook))
    else:
        state.hooks.append(module.register_forward_hook(inverse_output_hook))
    state.hooked.append(module)


def remove_adapters(model: nn.Module) -> None:
    """Undo everything madx did to `model`: the original output blocks back in every layer, the hooks and the
    invertible adapters and K-adapters gone. Afterwards the model's modules, state dict and outputs are the
    untouched model's."""
    base = base_model(model)
    for hook in base.__dict__.pop("_madx_knowledge", ()):  # kadapter.py: a head reading K-adapters
        hook.remove()
    for name in ("knowledge_reader", "kadapters"):  # kadapter.py: beside the encoder, in no layer
        if name in base._modules:
            delattr(base, name)
    state = base.__dict__.pop("_madx", None)
    if state is None:
        return
    for parent, attr, original in state.originals:
        setattr(parent, attr, original)
    for hook in state.hooks:
        hook.remove()
    del base.invertible_adapters


def add_adapter(model: nn.Module, name: str, config: AdapterConfig | None = None) -> None:
    """Add adapter `name` to every layer not in `config.leave_out` (inactive until `activate`)."""
    config = config or AdapterConfig()
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(f"adapter name {name!r} must be non-empty letters, digits, '_' or '-'")
    if not isinstance(config, AdapterConfig):
        raise TypeError(f"config must be a madx.AdapterConfig, got {type(config).__name__}")
    state = madx_state(model)
    if name in state.configs:
        raise ValueError(f"adapter {name!r} already exists; delete_adapter() it first or choose another name")
    n_layers = num_layers(model)
    bad = [i for i in config.leave_out if i >= n_layers]
    if bad:
        raise InputError(f"leave_out={list(config.leave_out)} names layers {bad}, but the model has {n_layers} layers")
    hidden = model.config.hidden_size
    ref = next(base_model(model).parameters())
    for (layer, kind), wrapper in state.outputs.items():
        if layer in config.leave_out or (kind == "attention" and config.architecture != "houlsby"):
            continue
        wrapper.adapters[name] = BottleneckAdapter(hidden, config).to(device=ref.device, dtype=ref.dtype)
    if config.invertible:
        state.invertible[name] = NICEInvertibleAdapter(hidden, config).to(device=ref.device, dtype=ref.dtype)
    state.configs[name] = config


def delete_adapter(model: nn.Module, name: str) -> None:
    state = madx_state(model)
    _check_names(state, (name,))
    for adapters in [w.adapters for w in state.outputs.values()] + [state.invertible]:
        if name in adapters:
            del adapters[name]
    del state.configs[name]
    for fusion in [f for f in state.fusions if name in f.split(",")]:
        drop_fusion(state, fusion)
    state.active = tuple(item for item in state.active if item != name)


def drop_fusion(state: MadxState, fusion: str) -> None:
    """Remove fusion `fusion` ("a,b") from every layer and from the active stack; its adapters stay."""
    for wrapper in state.outputs.values():
        if fusion in wrapper.adapter_fusion_layer:
            del wrapper.adapter_fusion_layer[fusion]
    del state.fusions[fusion]
    state.active = tuple(item for item in state.active if not (isinstance(item, Fuse) and item.name == fusion))


def _check_names(state: MadxState, names) -> None:
    missing = [n for n in names if n not in state.configs]
    if missing:
        raise KeyError(f"no adapter named {missing}; the model has {sorted(state.configs) or 'none'}")


def activate(model: nn.Module, *setup) -> None:
    """Make the stack `setup` active: adapter names and Fuse(...) blocks in order, or one Stack(...); the first item
    is the language adapter (and its invertible adapter the one applied). No arguments: no adapter active."""
    state = madx_state(model)
    items = flatten(setup)
    _check_names(state, adapter_names(items))
    names = [name for item in items for name in (item.names if isinstance(item, Group) else (item,))]
    if len(set(names)) != len(names):
        raise ValueError(f"adapter names repeat in the stack {items} (each adapter runs once in it)")
    for item in items:
        if isinstance(item, Fuse) and item.name not in state.fusions:
            raise KeyError(f"no fusion {item!r}; add it with madx.add_fusion(model, {list(item.names)}) or "
                           f"madx.load_fusion(model, directory) first (the model has {sorted(state.fusions) or 'none'})")
    state.active = items


def active_adapters(model: nn.Module) -> tuple:
    return madx_state(model).active


def adapter_config(model: nn.Module, name: str) -> AdapterConfig:
    state = madx_state(model)
    _check_names(state, (name,))
    return state.configs[name]


def adapter_modules(model: nn.Module, name: str) -> dict:
    """{path relative to the base model: module} of every module belonging to adapter `name`."""
    state = madx_state(model)
    _check_names(state, (name,))
    modules = {
        f"{state.module_path(layer, kind)}.adapters.{name}": wrapper.adapters[name]
        for (layer, kind), wrapper in state.outputs.items()
        if name in wrapper.adapters
    }
    if name in state.invertible:
        modules[f"invertible_adapters.{name}"] = state.invertible[name]
    return modules


def task_head(model: nn.Module) -> nn.Module | None:
    """The output layer of a task model (classifier / qa_outputs), or None (an MLM or bare encoder)."""
    for attr in TASK_HEAD_ATTRS:
        if isinstance(getattr(model, attr, None), nn.Module):
            return getattr(model, attr)
    return None


def head_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Every module of a task model outside its pretrained encoder that has weights (the classifier; DeBERTa's
    context pooler), and the encoder's pooler where the head reads it (BERT's sequence classification, multiple
    choice): what a task trains and saves beside its adapter."""
    if task_head(model) is None:
        return {}
    prefix = getattr(model, "base_model_prefix", "")
    modules = {name: m for name, m in model.named_children()
               if name != prefix and any(True for _ in m.parameters())}
    pooler = getattr(base_model(model), "pooler", None)
    if isinstance(pooler, nn.Module) and any(True for _ in pooler.parameters()):
        modules[f"{prefix}.pooler"] = pooler
    return modules


def head_state_dict(model: nn.Module) -> dict:
    """{"classifier.weight": tensor, ...}: the head modules' parameters, keyed by their path in the model."""
    return {f"{name}.{key}": value for name, module in head_modules(model).items()
            for key, value in module.state_dict(keep_vars=True).items()}


def train_adapters(model: nn.Module, *names: str) -> None:
    """Freeze everything except the named adapters (with their invertible adapters) and a task head."""
    state = madx_state(model)
    _check_names(state, names)
    model.requires_grad_(False)
    for name in names:
        for module in adapter_modules(model, name).values():
            module.requires_grad_(True)
    for module in head_modules(model).values():
        module.requires_grad_(True)
