"""Loading base models and tokenizers from a hub id or a local path, with checks before any work."""

from __future__ import annotations

import logging
from pathlib import Path

import transformers

from .model import SUPPORTED_MODEL_TYPES, UnsupportedModelError

log = logging.getLogger(__name__)


class ModelLoadError(ValueError):
    pass


def looks_like_a_path(name: str) -> bool:
    """A hub id is 'name' or 'namespace/name'; absolute, ./ and ../ names, and deeper ones, are local paths."""
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1


def load_config(base_model: str, *, trust_remote_code: bool = False):
    if looks_like_a_path(base_model) and not Path(base_model).exists():
        raise ModelLoadError(f"base_model {base_model!r}: no such local directory; give a model directory "
                             "(config.json and weights) or a hub id such as xlm-roberta-base")
    try:
        config = transformers.AutoConfig.from_pretrained(base_model, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        hint = "a local directory with config.json" if Path(base_model).exists() else "a hub id or a local path"
        raise ModelLoadError(f"base_model {base_model!r}: cannot load its config ({err}); give {hint}") from None
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise UnsupportedModelError(
            f"base_model {base_model!r} is a {config.model_type!r} model; madx supports {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    return config


def max_sequence_length(config) -> int:
    """Longest input the position embeddings allow (RoBERTa-style models offset positions by pad_token_id + 1)."""
    limit = config.max_position_embeddings
    if config.model_type in ("roberta", "xlm-roberta"):
        limit -= (config.pad_token_id or 0) + 1
    return limit


def check_sequence_length(config, seq_len: int, base_model: str, key: str = "seq_len") -> None:
    limit = max_sequence_length(config)
    if seq_len > limit:
        raise ModelLoadError(
            f"{key}={seq_len} is beyond base_model {base_model!r}'s position limit of {limit} tokens; "
            f"set {key} to at most {limit}"
        )


def load_tokenizer(base_model: str, *, trust_remote_code: bool = False):
    tokenizer = transformers.AutoTokenizer.from_pretrained(base_model, trust_remote_code=trust_remote_code)
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"base_model {base_model!r}: madx needs a fast tokenizer (tokenizer.json)")
    return tokenizer


def _quiet_from_pretrained(cls, base_model, **kwargs):
    # "newly initialized" classifier warnings are expected for a fresh task head
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        return cls.from_pretrained(base_model, **kwargs)
    finally:
        transformers.logging.set_verbosity(level)


def load_mlm_model(base_model: str, *, trust_remote_code: bool = False):
    return _quiet_from_pretrained(transformers.AutoModelForMaskedLM, base_model, trust_remote_code=trust_remote_code)


def load_task_model(base_model: str, auto_class: str, label_names: list[str], *, trust_remote_code: bool = False):
    """The base model with a new head: `auto_class` (AutoModelForTokenClassification, ...ForSequenceClassification,
    ...ForMultipleChoice, ...ForQuestionAnswering); label names for the classification heads."""
    labels = {"num_labels": len(label_names), "id2label": dict(enumerate(label_names)),
              "label2id": {n: i for i, n in enumerate(label_names)}} if label_names else {}
    return _quiet_from_pretrained(getattr(transformers, auto_class), base_model, trust_remote_code=trust_remote_code,
                                  **labels)


def load_token_classifier(base_model: str, label_names: list[str], *, trust_remote_code: bool = False):
    return load_task_model(base_model, "AutoModelForTokenClassification", label_names,
                           trust_remote_code=trust_remote_code)


def load_finetuned(directory, auto_class: str):
    """A whole fine-tuned task model (full_ft's output) saved with save_pretrained."""
    return getattr(transformers, auto_class).from_pretrained(directory)
