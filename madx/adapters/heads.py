"""Task heads on disk in AdapterHub's prediction-head format, beside the task adapter.

    head_config.json          {"config": {head_type, layers, activation_function, num_labels / num_choices,
                              label2id, use_pooler, ...}, "model_class": "<Arch>AdapterModel", "name", ...}
                              (+ madx's "task_type" and "label_names")
    model_head.safetensors    heads.<name>.<layer>.weight / .bias

This is what AdapterHub's `save_adapter(..., with_head=True, use_safetensors=True)` writes for a flex head
(AutoAdapterModel, as its example scripts train), so a head trained by either runs in the other. madx's task
models are Hugging Face's *For{Token,Sequence}Classification / *ForMultipleChoice / *ForQuestionAnswering
classes; each family says how its head maps to flex-head layers (its `head_layout`, a HeadLayout; a flex head is
[dropout, linear] for one layer, [dropout, linear, activation, dropout, linear] for two):

    tagging               layers 1              1 -> classifier
    question_answering    layers 1              1 -> qa_outputs
    classification        layers 2, tanh        1 -> classifier.dense, 4 -> classifier.out_proj  (RoBERTa, XLM-R)
                                                1 -> <encoder>.pooler.dense, 4 -> classifier         (BERT)
    multiple_choice       layers 2, tanh        1 -> <encoder>.pooler.dense, 4 -> classifier

(the pooler is dense + tanh on the first token: the flex head's first two layers, trained with the head).
A head without such a mapping (DeBERTa's context pooler) is saved by module path with its Hugging Face class
name, AdapterHub's layout for heads of those classes. Heads madx saved before this format (head.safetensors)
still load. madx records the head files' sha256 beside them (files.CHECKSUMS) and verifies them at load.

This module knows no head type and no task type: a task family gives its head type and layout
(madx/tasks/families.py: save_head, load_head, read_head_config), and a task type is a string written beside
the head.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .. import __version__
from ..core.errors import MadxError
from ..core.files import load_torch_file, record_checksums, verify_checksums, write_text, write_with
from .model import base_model, head_state_dict

log = logging.getLogger(__name__)

HEAD_CONFIG = "head_config.json"
HEAD_WEIGHTS = "model_head.safetensors"  # AdapterHub's name for a head saved with use_safetensors=True
OTHER_WEIGHTS = ("pytorch_model_head.bin", "head.safetensors")  # AdapterHub's default; madx before this format


class HeadLoadError(MadxError, ValueError):
    pass


@dataclass(frozen=True)
class HeadLayout:
    """How a family's Hugging Face head is an AdapterHub flex head (the module docstring's table)."""

    linear: str | None = None  # one layer: the path of the head's only linear module (classifier, qa_outputs)
    pooled: bool = False  # two layers, dense + tanh then linear: the encoder's pooler and the classifier (BERT)
    classifier_dense: bool = False  # two layers as RoBERTa's classifier.dense and .out_proj, where the model has them
    choices: bool = False  # the head scores choices: the config counts num_choices, not labels
    num_labels: int | None = None  # a fixed count of outputs (start and end: 2), else the model's num_labels
    bias: bool = False  # AdapterHub's config records the last layer's bias


def flex_layout(model: nn.Module, layout: HeadLayout | None) -> tuple[dict, dict] | None:
    """(flex head config, {flex layer index: module path in `model`}) for `model`'s head, or None where `layout`
    (None: the family has no flex head) does not fit the model."""
    if layout is None:
        return None
    if layout.linear:
        return {"layers": 1}, {1: layout.linear}
    prefix = getattr(model, "base_model_prefix", "")
    pooler = getattr(base_model(model), "pooler", None)
    classifier = getattr(model, "classifier", None)
    two = {"layers": 2, "activation_function": "tanh", "use_pooler": False}
    if layout.classifier_dense and hasattr(classifier, "out_proj") and hasattr(classifier, "dense"):
        return two, {1: "classifier.dense", 4: "classifier.out_proj"}
    if layout.pooled and isinstance(classifier, nn.Linear) and \
            isinstance(getattr(pooler, "dense", None), nn.Linear) and not any(
                n for n, _ in model.named_children() if n not in (prefix, "dropout", "classifier")):
        return two, {1: f"{prefix}.pooler.dense", 4: "classifier"}
    return None


def write_head(model: nn.Module, directory: Path, name: str, label_names: list[str], head_type: str,
               layout: HeadLayout | None, task_type: str, model_name: str | None = None,
               num_choices: int | None = None) -> None:
    """The head of `model` as AdapterHub's `head_type` laid out by `layout` (module docstring), with madx's task
    type and label names (`num_choices`: multiple choice's, which AdapterHub's head reshapes its scores by)."""
    weights = {k: v.detach().cpu().contiguous() for k, v in head_state_dict(model).items()}
    flex_modules = flex_layout(model, layout)
    label2id = {n: i for i, n in enumerate(label_names)}
    meta = {"hidden_size": model.config.hidden_size, "model_name": model_name or "",
            "model_type": model.config.model_type, "name": name, "version": f"madx.{__version__}",
            "task_type": task_type, "label_names": label_names}
    if flex_modules is None:  # by module path, with the Hugging Face class: AdapterHub's layout for a static head
        meta.update(config=None, model_class=type(model).__name__, num_labels=len(label_names), label2id=label2id)
    else:
        flex, modules = flex_modules
        config = {"head_type": head_type, "activation_function": flex.get("activation_function", "tanh"),
                  "dropout_prob": None, **flex}
        if layout.choices:
            config.update(num_choices=num_choices or 2, label2id={f"LABEL_{i}": i for i in range(num_choices or 2)})
        else:
            config.update(num_labels=layout.num_labels or model.num_labels,
                          label2id=label2id or {f"LABEL_{i}": i for i in range(2)})
        if layout.bias:
            config["bias"] = True
        meta.update(config=config, model_class=_adapter_model_class(model))
        weights = {f"heads.{name}.{i}.{key[len(path) + 1:]}": value for i, path in modules.items()
                   for key, value in weights.items() if key.startswith(path + ".")}
    write_with(directory / HEAD_WEIGHTS, lambda tmp: save_file(weights, str(tmp)))
    write_text(directory / HEAD_CONFIG, json.dumps(meta, indent=2) + "\n")
    record_checksums(directory, [directory / HEAD_WEIGHTS, directory / HEAD_CONFIG])


def _adapter_model_class(model: nn.Module) -> str:
    """XLMRobertaForTokenClassification -> XLMRobertaAdapterModel: the class AdapterHub's flex heads belong to."""
    return type(model).__name__.split("For")[0] + "AdapterModel"


def read_head_file(task_dir: Path) -> dict:
    """The head's config, with "label_names" (for a head AdapterHub saved: its label2id's, in id order) and, for a
    head madx saved, its "task_type"; verified against its recorded sha256."""
    path = Path(task_dir) / HEAD_CONFIG
    if not path.is_file():
        raise HeadLoadError(f"{path}: missing; {task_dir} is not a finished madx train-task output or an "
                                "AdapterHub adapter saved with_head=True")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise HeadLoadError(f"{path}: not valid JSON ({err}); the file is corrupt, copy it again") from None
    verify_checksums(path.parent, [path], error=HeadLoadError)
    if "task_type" in config:
        return config
    label2id = (config.get("config") or {}).get("label2id") or config.get("label2id") or {}
    return {**config, "label_names": [n for n, _ in sorted(label2id.items(), key=lambda item: item[1])]}


def head_type_of(config: dict) -> str | None:
    """AdapterHub's head type of a head config (read_head_file); None for a head saved by module path."""
    return (config.get("config") or {}).get("head_type")


def read_head_weights(directory: Path) -> tuple[Path, dict]:
    """(file, tensors) of a head's weights: madx's or AdapterHub's file, verified against its recorded sha256."""
    for name in (HEAD_WEIGHTS, *OTHER_WEIGHTS):
        file = directory / name
        if file.is_file():
            if file.suffix == ".bin":
                weights = load_torch_file(file, error=HeadLoadError)
            else:
                try:
                    weights = load_file(str(file))
                except (SafetensorError, OSError, RuntimeError, ValueError) as err:
                    raise HeadLoadError(f"{file}: cannot be read ({err}); the file is truncated or corrupt, copy "
                                        "it again") from None
            verify_checksums(directory, [file], error=HeadLoadError)
            return file, weights
    raise HeadLoadError(f"{directory}: no head weights ({HEAD_WEIGHTS}, or {' / '.join(OTHER_WEIGHTS)})")


def load_head(model: nn.Module, task_dir: Path, layout: HeadLayout | None) -> None:
    """The head saved in `task_dir` into `model`, a flex head read by `layout` (its family's: see
    tasks/families.load_head): every weight, each the right shape (a head of another type, layout or label set is
    an error naming both, never a partial load). A flex head with use_pooler keeps the model's own pooler, as
    AdapterHub does."""
    task_dir = Path(task_dir)
    config = read_head_file(task_dir)
    file, weights = read_head_weights(task_dir)
    flex = config.get("config")
    if flex:
        head_type = flex["head_type"]
        flex_modules = flex_layout(model, layout)
        mapping = {}
        if flex_modules is not None and flex.get("layers", 1) == flex_modules[0]["layers"] and \
                flex.get("use_pooler", False) is False:
            mapping = flex_modules[1]
        elif flex.get("use_pooler") and flex.get("layers") == 1 and isinstance(getattr(model, "classifier", None),
                                                                                nn.Linear):
            mapping = {1: "classifier"}  # the model's pooler, then the classifier: AdapterHub's use_pooler head
        if not mapping or (flex.get("layers", 1) == 2 and flex.get("activation_function") != "tanh"):
            raise HeadLoadError(f"{task_dir / HEAD_CONFIG}: a {head_type} head with {flex.get('layers')} layer(s), "
                                f"activation {flex.get('activation_function')!r}, use_pooler {flex.get('use_pooler')}"
                                f" has no equivalent in {type(model).__name__}; madx reads the layouts its task families give "
                                "(madx/adapters/heads.py's table)")
        prefix = f"heads.{config.get('name')}."
        renamed = {}
        for key, value in weights.items():
            index, _, param = key[len(prefix):].partition(".") if key.startswith(prefix) else ("", "", "")
            if not index.isdigit() or int(index) not in mapping:
                raise HeadLoadError(f"{file}: unexpected weight {key!r} for a {head_type} head named "
                                    f"{config.get('name')!r}")
            renamed[f"{mapping[int(index)]}.{param}"] = value
        weights = renamed
    elif weights and all("." not in k for k in weights):  # madx's first format: the classifier's weights alone
        weights = {f"classifier.{k}": v for k, v in weights.items()}
    params = head_state_dict(model)
    pooler = f"{getattr(model, 'base_model_prefix', '')}.pooler."
    missing = sorted(k for k in set(params) - set(weights) if not (flex and k.startswith(pooler)))
    unexpected = sorted(set(weights) - set(params))
    shapes = sorted(k for k in set(params) & set(weights) if tuple(params[k].shape) != tuple(weights[k].shape))
    if missing or unexpected or shapes:
        raise HeadLoadError(f"{file}: does not fit this model's {type(model).__name__} head (missing {missing[:3]}, "
                            f"unexpected {unexpected[:3]}, other shapes {shapes[:3]}); was it trained for another "
                            "task type, label set or base model?")
    with torch.no_grad():
        for key, value in weights.items():
            params[key].copy_(value)
