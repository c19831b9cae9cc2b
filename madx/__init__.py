"""madx: MAD-X cross-lingual transfer with adapters (Pfeiffer et al. 2020) on Hugging Face encoders.

The public names below are imported on first use (PEP 562), so `import madx.experiment` (the workflow's
config check, every `snakemake -n`) does not import torch.
"""

import importlib as _importlib

__version__ = "0.1.0"

_EXPORTS = {
    "adapters.composition": ("Fuse", "Stack"),
    "adapters.counting": ("ParameterCount", "count_parameters", "stored_parameters"),
    "adapters.config": ("AdapterConfig", "AdapterConfigError", "LANGUAGE_ADAPTER", "TASK_ADAPTER"),
    "adapters.fusion": ("FusionConfig", "add_fusion", "delete_fusion", "fusion_config", "fusion_regularization_loss",
                        "train_fusion"),
    "adapters.fusion_io": ("load_fusion", "save_fusion"),
    "adapters.io": ("AdapterLoadError", "load_adapter", "save_adapter"),
    "adapters.model": ("SUPPORTED_MODEL_TYPES", "UnsupportedModelError", "activate", "active_adapters",
                       "adapter_config", "add_adapter", "delete_adapter", "remove_adapters", "train_adapters"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(_importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    try:  # a subpackage (madx.adapters, madx.data, ...), as after an eager import
        return _importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__():
    return sorted({*globals(), *__all__})
