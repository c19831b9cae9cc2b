"""madx: MAD-X cross-lingual transfer with adapters (Pfeiffer et al. 2020) on Hugging Face encoders."""

__version__ = "0.1.0"

from .config import LANGUAGE_ADAPTER, TASK_ADAPTER, AdapterConfig, AdapterConfigError  # noqa: E402
from .io import AdapterLoadError, load_adapter, save_adapter  # noqa: E402
from .model import (  # noqa: E402
    SUPPORTED_MODEL_TYPES,
    ParameterCount,
    UnsupportedModelError,
    activate,
    active_adapters,
    adapter_config,
    add_adapter,
    count_parameters,
    delete_adapter,
    remove_adapters,
    train_adapters,
)

__all__ = [
    "AdapterConfig", "AdapterConfigError", "AdapterLoadError", "LANGUAGE_ADAPTER", "ParameterCount",
    "SUPPORTED_MODEL_TYPES", "TASK_ADAPTER", "UnsupportedModelError", "activate", "active_adapters",
    "adapter_config", "add_adapter", "count_parameters", "delete_adapter", "load_adapter", "remove_adapters",
    "save_adapter", "train_adapters",
]
