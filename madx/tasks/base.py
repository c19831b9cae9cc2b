"""What every task family is: the `Family` base class, the padding its `collate` shares, and `TaskObjective`.

A family is one class in one module (tagging, classification, multiple_choice, qa) that owns every decision of
its task types: how its data is read, romanized, encoded and batched, its head (the transformers Auto class and
AdapterHub's head type), its loss, how predictions are read from the model's outputs, its metrics with the name
of the main one, its trivial baselines, per-class breakdown and warnings, and the demo's task of its kind. The
registry (families.py) finds a family by task type; no other code compares a task type's name.

A family's features are dicts of plain lists (input_ids, and per family: labels, start/end, ...); `collate`
pads a list of them into tensors, and `count` says how many predictions a batch's summed loss is over (its
sub-tokens for NER, its examples otherwise), which `train.fit` divides by.
"""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F
from torch import nn

from ..adapters.heads import HeadLayout


def pad(rows: list[list], value, width: int | None = None) -> torch.Tensor:
    width = width or max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out


def mask_of(rows: list[list], width: int | None = None) -> torch.Tensor:
    return pad([[1] * len(r) for r in rows], 0, width)


def padded_inputs(ids: list[list], type_ids: list[list] | None, pad_id: int, width: int | None = None) -> dict:
    """input_ids, attention_mask (and token_type_ids when the tokenizer gives them) of sequences, padded."""
    width = width or max(len(r) for r in ids)
    batch = {"input_ids": pad(ids, pad_id, width), "attention_mask": mask_of(ids, width)}
    if type_ids is not None:
        batch["token_type_ids"] = pad(type_ids, 0, width)
    return batch


def inputs_of(batch: dict, targets: tuple[str, ...] = ("labels",)) -> dict:
    """The model's inputs in a batch: everything but the targets."""
    return {k: v for k, v in batch.items() if k not in targets}


def example_targets(features: list[dict]) -> dict:
    """One label per example (sentence classification, multiple choice): the batch's "labels"."""
    return {"labels": torch.tensor([f["label"] for f in features], dtype=torch.long)}


def example_loss(model: nn.Module, batch: dict) -> torch.Tensor:
    """The summed cross entropy of one label per example, over the model's (B, classes or choices) logits."""
    return F.cross_entropy(model(**inputs_of(batch)).logits.float(), batch["labels"], reduction="sum")


class Family:
    """A task family; a subclass sets the class attributes and writes the methods that raise here."""

    task_types: tuple[str, ...] = ()  # the task types it serves (a config's `type`, --task-type)
    auto_class = ""  # the transformers Auto class of its model
    head_type = ""  # AdapterHub's prediction head type
    head_layout: HeadLayout | None = None  # its head as AdapterHub's flex head (None: saved by module path)
    example_type: type = object  # what its reader returns (romanize_examples finds the family by it)
    labelled = False  # its head classifies over label names (a head on disk keeps them)
    demo_suffix = ".jsonl"  # the demo's file of its records

    def __init__(self, task_type: str):
        self.task_type, self.metric = task_type, self.main_metric(task_type)

    @classmethod
    def main_metric(cls, task_type: str) -> str:
        """The metric a dev score and the report use (a key of `metrics`)."""
        raise NotImplementedError

    @classmethod
    def task_type_of_head(cls, label_names: list[str]) -> str:
        """The task type of a head of this family AdapterHub saved (no madx task type in it), from its labels."""
        return cls.task_types[0]

    # data
    def read(self, spec) -> tuple[list, list | None]:
        """(examples, the label names the source defines, if any)."""
        raise NotImplementedError

    def romanize(self, examples: list, roman) -> list:
        """The examples with their text romanized by `roman` (data/romanize.Romanizer), labels unchanged."""
        raise NotImplementedError

    def label_names(self, examples: list, hub_names) -> list[str]:
        """The head's labels; none for a family that scores choices or spans."""
        return []

    def check(self, examples: list, label_names: list[str]) -> None:
        """A DataError naming the file and line of the first example this family cannot train or score on."""

    def encode(self, tokenizer, examples: list, label_names: list[str], settings, train: bool) -> list[dict]:
        raise NotImplementedError

    def length(self, feature: dict) -> int:
        return len(feature["input_ids"])

    def num_choices(self, examples: list) -> int | None:
        """The choices per example a multiple-choice head reshapes its scores by (the head's config); None."""
        return None

    # batches
    def collate(self, features: list[dict], pad_id: int, labels: bool = True) -> dict:
        type_ids = [f["token_type_ids"] for f in features] if "token_type_ids" in features[0] else None
        batch = padded_inputs([f["input_ids"] for f in features], type_ids, pad_id)
        if labels:
            batch.update(self.targets(features, batch["input_ids"].shape[-1]))
        return batch

    def targets(self, features: list[dict], width: int) -> dict:
        raise NotImplementedError

    def count(self, batch: dict) -> int:
        return len(batch["labels"])

    def loss(self, model: nn.Module, batch: dict) -> torch.Tensor:
        """The summed loss of a batch (train.fit makes it a mean over count())."""
        raise NotImplementedError

    # prediction
    def outputs(self, out, row: int, feature: dict):
        """One feature's part of the model's output (the predictions are read from it)."""
        return out.logits[row].float().cpu()

    def decode(self, examples: list, features: list[dict], outputs: list, label_names: list[str], settings) -> list:
        """Each example's prediction from its features' outputs."""
        raise NotImplementedError

    def describe(self, examples: list, features: list[dict]) -> str:
        """What the job log says of a data set beside its size."""
        return ""

    # scores: what an evaluation JSON shows
    def metrics(self, examples: list, features: list[dict], predictions: list, lang: str) -> dict:
        raise NotImplementedError

    def baselines(self, examples: list, label_names: list[str], lang: str) -> dict:
        """{"majority", "chance"} on this test set, in the main metric's 0-1 scale (metrics.py)."""
        raise NotImplementedError

    def breakdown(self, examples: list, predictions: list, label_names: list[str]) -> dict:
        """What an evaluation adds per class (per-class scores, a confusion matrix), where the family has classes."""
        return {}

    def warnings(self, examples: list, predictions: list) -> list[str]:
        """Predictions no working model gives (all one answer where the gold answers are not)."""
        return []

    # the offline demo (madx/demo/: grammar.py's sentences, data.py's files)
    @property
    def makes_demo(self) -> bool:
        """Whether the demo writes a task of this type."""
        return True

    def demo_records(self, sentences, count: int, seed: str) -> list:
        """`count` records of the demo's task of this type, from `sentences` (demo/grammar.DemoSentences: a language's
        sentences over one split's names), deterministic from `seed`."""
        raise NotImplementedError

    def demo_text(self, records: list) -> str:
        """The demo file's text of those records (JSONL, the layout the family's reader reads)."""
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


class TaskObjective(nn.Module):
    """forward(**batch) -> the family's summed loss: what `train.fit` trains."""

    def __init__(self, model: nn.Module, fam: Family):
        super().__init__()
        self.model, self.family = model, fam

    def forward(self, **batch) -> torch.Tensor:
        return self.family.loss(self.model, batch)
