"""madx: MAD-X cross-lingual transfer with adapters (Pfeiffer et al. 2020) on Hugging Face encoders.

The public names below are imported on first use (PEP 562), so `import madx.experiment` (the workflow's
config check, every `snakemake -n`) does not import torch.
"""

from .core.lazy import lazy_exports as _lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "adapters.composition": ("Average", "Fuse", "Stack"),
    "adapters.counting": ("ParameterCount", "count_parameters", "stored_parameters"),
    "adapters.config": ("AdapterConfig", "AdapterConfigError", "LANGUAGE_ADAPTER", "TASK_ADAPTER"),
    "adapters.fusion": ("FusionConfig", "add_fusion", "delete_fusion", "fusion_config", "fusion_regularization_loss",
                        "train_fusion"),
    "adapters.fusion_io": ("load_fusion", "save_fusion"),
    "adapters.kadapter": ("KAdapterConfig", "KAdapterError", "add_kadapter", "delete_kadapter", "knowledge_features",
                          "load_kadapter", "read_kadapters", "read_knowledge", "save_kadapter",
                          "stop_reading_knowledge", "train_kadapters"),
    "core.settings": ("KnowledgeTraining",),
    "training.kadapter": ("train_kadapter",),
    "adapters.io": ("AdapterLoadError", "load_adapter", "save_adapter"),
    "adapters.model": ("SUPPORTED_MODEL_TYPES", "UnsupportedModelError", "activate", "active_adapters",
                       "adapter_config", "add_adapter", "delete_adapter", "remove_adapters", "train_adapters"),
}
__getattr__, __dir__, __all__ = _lazy_exports(__name__, _EXPORTS, subpackages=True)
