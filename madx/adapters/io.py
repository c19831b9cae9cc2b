"""Adapters on disk, in AdapterHub's format: adapter_config.json + adapter.safetensors.

Loading also reads AdapterHub's legacy pytorch_adapter.bin (torch.load with weights_only=True; a pickle that
would run code is refused) and accepts any model prefix on the keys (`roberta.`, `bert.`, none). madx writes the
files' sha256 beside them (files.CHECKSUMS) and verifies them at load; a directory without that record
(AdapterHub's own) loads unchecked. Every check runs before the model is touched, so a bad file never leaves a
partly loaded adapter behind.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import __version__
from ..core.errors import MadxError
from ..core.files import load_torch_file, record_checksums, staged_dir, verify_checksums, write_text, write_with
from .config import AdapterConfig, AdapterConfigError
from .hub import CONFIG_NAME, LEGACY_WEIGHTS_NAME, WEIGHTS_NAME, resolve_adapter
from .model import add_adapter, adapter_config, adapter_modules, delete_adapter, madx_state, num_layers

_KEY = re.compile(r"^(?:.*?\.)?((?:encoder\.layer\.(\d+)\.(?:attention\.)?output\.adapters|invertible_adapters)\.([^.]+)\.(.+))$")


class AdapterLoadError(MadxError, ValueError):
    """An adapter directory that does not fit the model (or is not an adapter)."""


def save_adapter(model, name: str, directory: str | os.PathLike, *, model_name: str | None = None) -> Path:
    """Write adapter `name` as an AdapterHub directory; the directory appears complete or not at all."""
    with staged_dir(directory) as staging:
        write_adapter_files(model, name, staging, model_name=model_name)
    return Path(directory)


def write_adapter_files(model, name: str, directory: Path, *, model_name: str | None = None) -> None:
    """adapter_config.json and adapter.safetensors into `directory` (an output being staged: see files.staged_dir)."""
    config = adapter_config(model, name)
    prefix = model.base_model_prefix + "."  # AdapterHub writes it for bare encoders too
    tensors = {
        f"{prefix}{path}.{key}": tensor.detach().to("cpu").contiguous()
        for path, module in adapter_modules(model, name).items()
        for key, tensor in module.state_dict().items()
    }
    meta = {"config": config.to_adapterhub(), **made_for(model, name, model_name)}
    write_text(directory / CONFIG_NAME, json.dumps(meta, indent=2) + "\n")
    write_with(directory / WEIGHTS_NAME, lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))
    record_checksums(directory, [directory / CONFIG_NAME, directory / WEIGHTS_NAME])


def read_adapter_config(directory: str | os.PathLike) -> tuple[dict, AdapterConfig]:
    """(the whole adapter_config.json, its AdapterConfig); clear errors for a missing or bad file."""
    meta, config_file = read_config_file(directory, CONFIG_NAME, WEIGHTS_NAME, what="adapter")
    if not isinstance(meta, dict) or "config" not in meta:
        raise AdapterLoadError(f"{config_file}: no 'config' entry; is this an AdapterHub adapter directory?")
    try:
        config = AdapterConfig.from_adapterhub(meta["config"], legacy="version" not in meta, where=str(config_file))
    except AdapterConfigError as err:
        raise AdapterLoadError(str(err)) from None
    verify_checksums(config_file.parent, [config_file], error=AdapterLoadError)
    return meta, config


def read_config_file(directory: str | os.PathLike, config_name: str, weights_name: str, *,
                     what: str) -> tuple[dict, Path]:
    """(the JSON in `directory`/`config_name`, its path), with errors naming what is missing or bad; `what` names
    the directory's kind ("adapter", "fusion") in them. The caller checks its entries and verifies its checksum."""
    directory = Path(directory)
    file = directory / config_name
    if not directory.is_dir():
        raise AdapterLoadError(f"{directory}: {what} directory not found")
    if not file.is_file():
        article = "an" if what[0] in "aeiou" else "a"
        raise AdapterLoadError(f"{file}: missing; {article} {what} directory has {config_name} and {weights_name}")
    try:
        meta = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AdapterLoadError(f"{file}: not valid JSON ({err})") from None
    return meta, file


def read_adapter_weights(directory: Path) -> tuple[Path, dict]:
    """(the weights file, its tensors): adapter.safetensors, else the legacy pytorch_adapter.bin; verified against
    the checksums madx recorded when it wrote them."""
    return read_weights_file(directory, WEIGHTS_NAME, LEGACY_WEIGHTS_NAME)


def read_weights_file(directory: str | os.PathLike, weights_name: str, legacy_name: str) -> tuple[Path, dict]:
    """(the weights file, its tensors): `weights_name` (safetensors), else the legacy torch file `legacy_name`
    (read with weights_only); verified against the checksums madx recorded when it wrote them."""
    directory = Path(directory)
    safe, legacy = directory / weights_name, directory / legacy_name
    if safe.is_file():
        try:
            file, tensors = safe, load_file(str(safe), device="cpu")
        except (SafetensorError, OSError, RuntimeError, ValueError) as err:
            raise AdapterLoadError(f"{safe}: cannot be read ({err}); the file is truncated or corrupt, copy it "
                                   "again") from None
    elif legacy.is_file():
        file, tensors = legacy, load_torch_file(legacy, error=AdapterLoadError)
    else:
        raise AdapterLoadError(f"{directory}: no {weights_name} (or legacy {legacy_name}) weights file")
    verify_checksums(directory, [file], error=AdapterLoadError)
    return file, tensors


def made_for(model, name: str, model_name: str | None) -> dict:
    """The entries of AdapterHub's config files that say what a saved module is made for, and who wrote it."""
    return {
        "hidden_size": model.config.hidden_size,
        "model_class": type(model).__name__,
        "model_name": model_name if model_name is not None else (getattr(model.config, "_name_or_path", "") or ""),
        "model_type": model.config.model_type,
        "name": name,
        "version": f"madx.{__version__}",
    }


MADE_FOR = ("hidden_size", "model_type")  # what an adapter's config says about the base model it was made for


def made_for_mismatch(meta: dict, base: dict) -> tuple[str, object, object] | None:
    """(key, the adapter's value, the base model's) for the first of MADE_FOR on which they disagree, or None."""
    for key in MADE_FOR:
        made_for, has = meta.get(key), base.get(key)
        if made_for is not None and has is not None and made_for != has:
            return key, made_for, has
    return None


def _check_meta(meta: dict, model, where: Path) -> None:
    mismatch = made_for_mismatch(meta, {key: getattr(model.config, key) for key in MADE_FOR})
    if mismatch is None:
        return
    key, made_for, has = mismatch
    if key == "hidden_size":
        raise AdapterLoadError(f"{where}: adapter was made for hidden size {made_for}, the model has {has}; "
                               "load it into the base model it was trained on")
    raise AdapterLoadError(f"{where}: adapter was made for model type {made_for!r}, the model is {has!r}")


def _renamed(state_dict: dict, file: Path, n_layers: int) -> tuple[dict, str]:
    """Keys relative to the base model, with the stored adapter name; errors for foreign keys or layers."""
    out, names, layers = {}, set(), {-1}
    for key, tensor in state_dict.items():
        match = _KEY.match(key)
        if match is None:
            raise AdapterLoadError(f"{file}: unexpected key {key!r}, not part of a bottleneck or invertible adapter")
        _, layer, stored_name, _ = match.groups()
        layers.add(int(layer) if layer is not None else -1)
        names.add(stored_name)
        out[match.group(1)] = tensor
    if max(layers) >= n_layers:
        raise AdapterLoadError(
            f"{file}: has weights up to layer {max(layers)}, but the model has {n_layers} layers; "
            "load it into the base model it was trained on"
        )
    if len(names) != 1:
        raise AdapterLoadError(f"{file}: expected the weights of one adapter, found {sorted(names) or 'none'}")
    return out, names.pop()


def load_adapter(model, directory: str | os.PathLike, name: str | None = None) -> str:
    """Load an AdapterHub adapter directory into `model`, or a published one by hub id (`org/name`, or
    `org/name@revision`: adapters/hub.py); returns its name (`name` renames it)."""
    directory, _ = resolve_adapter(directory)
    meta, config = read_adapter_config(directory)
    _check_meta(meta, model, directory / CONFIG_NAME)
    file, state_dict = read_adapter_weights(directory)
    state_dict, stored_name = _renamed(state_dict, file, num_layers(model))
    name = name or meta.get("name") or stored_name
    if name in madx_state(model).configs:
        raise AdapterLoadError(f"{directory}: the model already has an adapter named {name!r}; pass name= to rename")
    add_adapter(model, name, config)
    try:
        target = {}
        for path, module in adapter_modules(model, name).items():
            stored_path = path[: len(path) - len(name)] + stored_name  # every path ends in the adapter name
            for key, param in module.state_dict(keep_vars=True).items():
                target[f"{stored_path}.{key}"] = param
        missing = sorted(set(target) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(target))
        if missing or unexpected:
            raise AdapterLoadError(
                f"{file}: does not match its config ({len(missing)} missing keys, e.g. {missing[:3]}; "
                f"{len(unexpected)} unexpected keys, e.g. {unexpected[:3]}); was it saved with a different leave_out "
                "or for another model?"
            )
        for key, param in target.items():
            if tuple(state_dict[key].shape) != tuple(param.shape):
                raise AdapterLoadError(
                    f"{file}: {key} has shape {tuple(state_dict[key].shape)}, the model needs {tuple(param.shape)}"
                )
        with torch.no_grad():
            for key, param in target.items():
                param.copy_(state_dict[key])
    except BaseException:
        delete_adapter(model, name)
        raise
    return name


def load_adapter_beside(model, directory: str | os.PathLike) -> str:
    """Load an adapter under its own name, or that name with a number when the model already has one by it (two
    language adapters saved under one name, stacked or averaged side by side); returns the name."""
    directory, _ = resolve_adapter(directory)
    meta, _ = read_adapter_config(directory)
    name = meta.get("name")
    taken = madx_state(model).configs
    if name and name in taken:
        name = next(f"{name}_{i}" for i in itertools.count(2) if f"{name}_{i}" not in taken)
    return load_adapter(model, directory, name=name)
