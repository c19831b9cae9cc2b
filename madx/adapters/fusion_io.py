"""AdapterFusion's files, AdapterHub's fusion directory both ways: save_fusion / load_fusion (fusion.py computes it).

On disk this is AdapterHub's fusion directory: adapter_fusion_config.json (adapter_names, config, hidden_size, ...)
and model_adapter_fusion.safetensors (AdapterHub's legacy pytorch_model_adapter_fusion.bin also loads, read with
weights_only), keys `<prefix>.encoder.layer.<i>.output.adapter_fusion_layer.<a,b>.{query,key,value}.*`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from ..core.errors import InputError
from ..core.files import record_checksums, staged_dir, verify_checksums, write_text, write_with
from .fusion import FusionConfig, fusion_name, add_fusion, delete_fusion, fusion_config, fusion_modules
from .io import AdapterLoadError, made_for, made_for_mismatch, read_config_file, read_weights_file
from .model import madx_state

CONFIG_NAME = "adapter_fusion_config.json"
WEIGHTS_NAME = "model_adapter_fusion.safetensors"
LEGACY_WEIGHTS_NAME = "pytorch_model_adapter_fusion.bin"
_KEY = re.compile(r"^(?:.*?\.)?(encoder\.layer\.(\d+)\.(?:attention\.)?output\.adapter_fusion_layer\.([^.]+)\.(.+))$")


def save_fusion(model: nn.Module, names, directory: str | os.PathLike, *, model_name: str | None = None) -> Path:
    """Write the fusion of `names` as an AdapterHub fusion directory; it appears complete or not at all."""
    with staged_dir(directory) as staging:
        write_fusion_files(model, names, staging, model_name=model_name)
    return Path(directory)


def write_fusion_files(model: nn.Module, names, directory: Path, *, model_name: str | None = None) -> None:
    """adapter_fusion_config.json and model_adapter_fusion.safetensors into `directory` (an output being staged)."""
    name = fusion_name(names)
    config = fusion_config(model, name)
    prefix = model.base_model_prefix + "."
    tensors = {f"{prefix}{path}.{key}": tensor.detach().to("cpu").contiguous()
               for path, module in fusion_modules(model, name).items()
               for key, tensor in module.state_dict().items()}
    temperatures = [layer.temperature for layer in fusion_modules(model, name).values()]
    meta = {"adapter_names": name.split(","), "config": config.to_adapterhub(), **made_for(model, name, model_name)}
    if config.temperature:  # where the annealing stands (AdapterHub keeps no record: its loads restart at 50)
        meta["madx_temperature"] = max(temperatures, default=1.0)
    write_text(directory / CONFIG_NAME, json.dumps(meta, indent=2) + "\n")
    write_with(directory / WEIGHTS_NAME, lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))
    record_checksums(directory, [directory / CONFIG_NAME, directory / WEIGHTS_NAME])


def read_fusion_config(directory: str | os.PathLike) -> tuple[dict, FusionConfig]:
    """(adapter_fusion_config.json, its FusionConfig), with clear errors for a missing or bad file."""
    meta, file = read_config_file(directory, CONFIG_NAME, WEIGHTS_NAME, what="fusion")
    names = meta.get("adapter_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise AdapterLoadError(f"{file}: no 'adapter_names' list; is this an AdapterHub fusion directory "
                               "(save_adapter_fusion)?")
    if not isinstance(meta.get("config"), dict):
        raise AdapterLoadError(f"{file}: no 'config' (AdapterHub's fusion keys: key, query, value, ...); is this a "
                               "fusion directory that save_adapter_fusion or madx.save_fusion wrote?")
    try:
        config = FusionConfig.preset(meta["config"])
    except InputError as err:
        raise AdapterLoadError(f"{file}: {err}") from None
    verify_checksums(file.parent, [file], error=AdapterLoadError)
    return meta, config


def read_fusion_weights(directory: str | os.PathLike) -> tuple[Path, dict]:
    """(the weights file, its tensors), verified against madx's checksums where it recorded them."""
    return read_weights_file(directory, WEIGHTS_NAME, LEGACY_WEIGHTS_NAME)


def load_fusion(model: nn.Module, directory: str | os.PathLike, adapter_names=None) -> str:
    """Load an AdapterHub fusion directory over adapters the model already has; returns the fusion's name.
    `adapter_names`: the model's names for the fused adapters, in the file's order, when they were loaded under
    other names than those the fusion was saved with."""
    directory = Path(directory)
    meta, config = read_fusion_config(directory)
    where = directory / CONFIG_NAME
    mismatch = made_for_mismatch(meta, {"hidden_size": model.config.hidden_size,
                                        "model_type": model.config.model_type})
    if mismatch:
        key, made_for, has = mismatch
        raise AdapterLoadError(f"{where}: fusion was made for {key} {made_for!r}, the model has {has!r}")
    stored = ",".join(meta["adapter_names"])
    names = list(adapter_names) if adapter_names is not None else meta["adapter_names"]
    if len(names) != len(meta["adapter_names"]):
        raise AdapterLoadError(f"{where}: fuses {len(meta['adapter_names'])} adapters {meta['adapter_names']}; "
                               f"adapter_names gives {len(names)}")
    state = madx_state(model)
    missing = [n for n in names if n not in state.configs]
    if missing:
        raise AdapterLoadError(f"{where}: fuses adapters {names}, but the model has no adapter {missing} "
                               f"(it has {sorted(state.configs) or 'none'}); load those adapters first")
    file, tensors = read_fusion_weights(directory)
    name = add_fusion(model, names, config)
    try:
        _copy_weights(model, name, stored, file, tensors)
    except BaseException:
        delete_fusion(model, name)
        raise
    if config.temperature and "madx_temperature" in meta:
        for layer in fusion_modules(model, name).values():
            layer.temperature = float(meta["madx_temperature"])
    return name


def _copy_weights(model: nn.Module, name: str, stored: str, file: Path, tensors: dict) -> None:
    found = {}
    for key, tensor in tensors.items():
        match = _KEY.match(key)
        if match is None or match.group(3) != stored:
            raise AdapterLoadError(f"{file}: unexpected key {key!r}, not a layer of fusion {stored!r}")
        found[match.group(1).replace(f".adapter_fusion_layer.{stored}.", f".adapter_fusion_layer.{name}.")] = tensor
    target = {f"{path}.{key}": param for path, module in fusion_modules(model, name).items()
              for key, param in module.state_dict(keep_vars=True).items()}
    missing, unexpected = sorted(set(target) - set(found)), sorted(set(found) - set(target))
    if missing or unexpected:
        raise AdapterLoadError(
            f"{file}: does not match its config and adapters ({len(missing)} missing keys, e.g. {missing[:2]}; "
            f"{len(unexpected)} unexpected, e.g. {unexpected[:2]}); was it saved for adapters with another "
            "leave_out or architecture, or for another model?")
    for key, param in target.items():
        if tuple(found[key].shape) != tuple(param.shape):
            raise AdapterLoadError(f"{file}: {key} has shape {tuple(found[key].shape)}, the model needs "
                                   f"{tuple(param.shape)} (another hidden size?)")
    with torch.no_grad():
        for key, param in target.items():
            param.copy_(found[key])
