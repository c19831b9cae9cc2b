"""The registry of task families: task type -> family, the one place that lists them, and what works for any
family through it: predictions, heads on disk, romanized examples.

A family (base.py) is one class in its own module: tagging.py (ner, pos), classification.py, multiple_choice.py
and qa.py. Adding a task type is a module with its family and a line in FAMILY_CLASSES (or `register` from outside
the package); the config schema's task types, the CLI's choices, AdapterHub's head types, the romanizer's example
types and the demo's tasks are all read from here.

Beside its metrics, a family says what an evaluation JSON shows with them: its trivial baselines on the test set
(`baselines`), per-class scores and a confusion matrix where it has classes (`breakdown`), and warnings about
predictions that cannot be a working model's (`warnings`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..adapters import heads
from ..adapters.heads import HEAD_CONFIG, HeadLoadError, head_type_of, read_head_file
from ..core.errors import MadxError
from ..core.settings import EVAL_BATCH_SIZE
from ..core.tensors import HALF_DTYPES, without_full_mask
from .base import Family, TaskObjective  # noqa: F401 - TaskObjective: training asks the registry for it
from .classification import Classification
from .multiple_choice import MultipleChoice
from .qa import QuestionAnswering
from .tagging import TokenClassification

FAMILY_CLASSES = (TokenClassification, Classification, MultipleChoice, QuestionAnswering)
FAMILIES: dict[str, type[Family]] = {}
TASK_TYPES = FAMILIES.keys()  # a live view: a family registered later is in it too
# the task type where none is given: the commands' default, and that of a result written before results named it
DEFAULT_TASK_TYPE = "ner"


def register(cls: type[Family]) -> type[Family]:
    """Make `cls`'s task types known: to `family`, the config schema, the CLI, heads on disk, the romanizer."""
    if not cls.task_types or not cls.auto_class or not cls.head_type:
        raise ValueError(f"{cls.__name__}: a family sets task_types, auto_class and head_type")
    taken = [t for t in cls.task_types if FAMILIES.get(t, cls) is not cls]
    if taken:
        raise ValueError(f"{cls.__name__}: task type(s) {taken} belong to {FAMILIES[taken[0]].__name__} already")
    FAMILIES.update(dict.fromkeys(cls.task_types, cls))
    return cls


for _cls in FAMILY_CLASSES:
    register(_cls)


def family(task_type: str) -> Family:
    if task_type not in FAMILIES:
        raise ValueError(f"task type {task_type!r}; use one of {tuple(FAMILIES)}")
    return FAMILIES[task_type](task_type)


def main_metric(task_type: str) -> str:
    """The metric a task type's results are compared by (its report column)."""
    return family(task_type).metric


def family_classes() -> list[type[Family]]:
    """Each registered family once, in registration order."""
    return list(dict.fromkeys(FAMILIES.values()))


# ---- examples of any family


def romanize_examples(examples: list, roman) -> list:
    """Task examples (any family's, read by its reader) with their text romanized by the family they belong to."""
    if not examples:
        return []
    owner = next((cls for cls in family_classes() if isinstance(examples[0], cls.example_type)), None)
    if owner is None:
        raise TypeError(f"cannot romanize a {type(examples[0]).__name__}: no task family reads it")
    return owner(owner.task_types[0]).romanize(examples, roman)


# ---- heads on disk (AdapterHub's format: madx/adapters/heads.py)


def save_head(model: nn.Module, directory: Path, name: str, label_names: list[str], task_type: str,
              model_name: str | None = None, num_choices: int | None = None) -> None:
    """The head of a `task_type` model in AdapterHub's format, as its family's head type and layout."""
    fam = family(task_type)
    heads.write_head(model, directory, name, label_names, fam.head_type, fam.head_layout, task_type,
                     model_name=model_name, num_choices=num_choices)


def load_head(model: nn.Module, task_dir: Path) -> None:
    """The head saved in `task_dir` (by madx or AdapterHub) into `model`, read by the layout of its family."""
    config = read_head_config(task_dir)
    if config["task_type"] not in FAMILIES:
        raise HeadLoadError(f"{Path(task_dir) / HEAD_CONFIG}: task_type {config['task_type']!r}; madx reads "
                            f"{', '.join(FAMILIES)}")
    heads.load_head(model, task_dir, family(config["task_type"]).head_layout)


def read_head_config(task_dir: Path) -> dict:
    """The head's config, with "task_type" and "label_names" (for a head AdapterHub saved: the family of its head
    type says the task type, and whether its label2id names labels)."""
    config = read_head_file(task_dir)
    if "task_type" in config:
        return config
    head_type = head_type_of(config)
    owner = next((cls for cls in family_classes() if cls.head_type == head_type), None)
    if owner is None:
        *known, last = dict.fromkeys(cls.head_type for cls in family_classes())
        raise HeadLoadError(f"{Path(task_dir) / HEAD_CONFIG}: head_type {head_type!r}; madx reads {', '.join(known)} "
                            f"and {last} heads")
    labels = config["label_names"] if owner.labelled else []
    return {**config, "task_type": owner.task_type_of_head(labels), "label_names": labels}


# ---- prediction


class NonFiniteScores(MadxError, ValueError):
    """The model's scores (logits) for some inputs are NaN or infinite: no prediction read from them means anything."""


@torch.no_grad()
def predict(model: nn.Module, fam: Family, examples: list, features: list[dict], label_names: list[str], settings,
            pad_id: int, batch_size: int = EVAL_BATCH_SIZE, device=None, mixed_precision: str = "no",
            adapt=None) -> list:
    """Every example's prediction, from length-grouped batches of its features.

    mixed_precision "bf16"/"fp16": a model wholly in that dtype (`madx evaluate` casts it so) runs as it
    is; one whose frozen base alone was cast (dev evaluation in task training: adapters and head stay
    fp32) runs under autocast, as training does. `adapt(batch)`: called before each batch is predicted, on the
    batch as the model reads it (EMEA learns its ensemble weights there)."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    dtype = HALF_DTYPES.get(mixed_precision)
    mixed = dtype is not None and any(p.is_floating_point() and p.dtype != dtype for p in model.parameters())
    was_training = model.training
    model.eval()
    order = sorted(range(len(features)), key=lambda i: fam.length(features[i]))
    outputs: list = [None] * len(features)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = without_full_mask(fam.collate([features[i] for i in chunk], pad_id, labels=False))
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.autocast(device.type, dtype=dtype, enabled=mixed):
            if adapt is not None:
                adapt(batch)
            out = model(**batch)
        for row, i in enumerate(chunk):
            outputs[i] = fam.outputs(out, row, features[i])
    model.train(was_training)
    bad = sum(not _finite(output) for output in outputs)
    if bad:
        raise NonFiniteScores(f"the model's scores are NaN or infinite for {bad} of {len(outputs)} inputs")
    return fam.decode(examples, features, outputs, label_names, settings)


def prediction_entropy(out, batch: dict) -> torch.Tensor:
    """The mean entropy of a model's predicted distributions on a batch: per token (tagging: the positions the
    attention mask keeps), per input (classification, multiple choice), or of the answer's start and end (QA)."""
    scores = [out.logits] if getattr(out, "logits", None) is not None else [out.start_logits, out.end_logits]
    total = 0.0
    for logits in scores:
        logp = torch.log_softmax(logits.float(), dim=-1)
        entropy = -(logp.exp() * logp).sum(-1)  # (B,) or (B, T)
        mask = batch.get("attention_mask")
        if entropy.dim() == 2 and logits.dim() == 3 and mask is not None and mask.shape == entropy.shape:
            total = total + (entropy * mask).sum() / mask.sum().clamp(min=1)
        else:
            total = total + entropy.mean()
    return total / len(scores)


def _finite(output) -> bool:
    """Whether a feature's output (a tensor, or a tuple of them: QA's start and end) holds only finite numbers."""
    return all(bool(torch.isfinite(t).all()) for t in (output if isinstance(output, tuple) else (output,)))
