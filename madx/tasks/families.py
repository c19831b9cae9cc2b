"""Task families: how each task type reads its data, encodes it, batches it, computes its loss, predicts and
scores. Token classification (ner, pos), sentence(-pair) classification, multiple choice and extractive QA
share the training loop, the setups and the evaluation job; only these pieces differ.

A family's features are dicts of plain lists (input_ids, and per family: labels, start/end, ...); `collate`
pads a list of them into tensors, and `count` says how many predictions a batch's summed loss is over (its
sub-tokens for NER, its examples otherwise), which `train.fit` divides by.

Beside its metrics, a family says what an evaluation JSON shows with them: its trivial baselines on the test set
(`baselines`), per-class scores and a confusion matrix where it has classes (`breakdown`), and warnings about
predictions that cannot be a working model's (`warnings`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import InputError, MadxError
from ..core.sources import DataError
from ..core.tensors import HALF_DTYPES, without_full_mask
from ..data.labelled import IGNORE, check_labels, encode, label_names_of, read_labelled
from ..data.texts import read_classification, read_multiple_choice, read_qa
from .metrics import (accuracy_baselines, class_scores, main_metric, majority_share, ner_baselines, one_class_warning,
                      sequence_metrics)
from .qa import best_spans, encode_windows, qa_baselines, qa_metrics


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


class Family:
    """The token-classification family (ner, pos); the others override what differs."""

    auto_class = "AutoModelForTokenClassification"
    labelled = True  # has label names (a classification head over them)

    def __init__(self, task_type: str):
        self.task_type, self.metric = task_type, main_metric(task_type)

    # data
    def read(self, spec) -> tuple[list, list | None]:
        return read_labelled(spec)

    def label_names(self, examples: list, hub_names) -> list[str]:
        """The head's labels: the hub dataset's names, or those the training data uses; none for a family that
        scores choices or spans."""
        return label_names_of(examples, hub_names) if self.labelled else []

    def check(self, examples: list, label_names: list[str]) -> None:
        check_labels(examples, label_names)

    def encode(self, tokenizer, examples: list, label_names: list[str], settings, train: bool) -> list[dict]:
        return encode(tokenizer, examples, label_names, settings.max_length,
                      settings.label_all_subtokens if train else False)

    def length(self, feature: dict) -> int:
        return len(feature["input_ids"])

    # batches
    def collate(self, features: list[dict], pad_id: int, labels: bool = True) -> dict:
        type_ids = [f["token_type_ids"] for f in features] if "token_type_ids" in features[0] else None
        batch = padded_inputs([f["input_ids"] for f in features], type_ids, pad_id)
        if labels:
            batch.update(self.targets(features, batch["input_ids"].shape[-1]))
        return batch

    def targets(self, features: list[dict], width: int) -> dict:
        return {"labels": pad([f["labels"] for f in features], IGNORE, width)}

    def count(self, batch: dict) -> int:
        return int((batch["labels"] != IGNORE).sum())

    def loss(self, model: nn.Module, batch: dict) -> torch.Tensor:
        """The summed loss of a batch (train.fit makes it a mean over count())."""
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = model(**inputs).logits  # (B, T, L)
        return F.cross_entropy(logits.flatten(0, 1).float(), batch["labels"].flatten(), ignore_index=IGNORE,
                               reduction="sum")

    # prediction
    def outputs(self, out, row: int, feature: dict):
        """One feature's part of the model's output (the predictions are read from it)."""
        return out.logits[row, : len(feature["input_ids"])].float().cpu()

    def decode(self, examples: list, features: list[dict], outputs: list, label_names: list[str], settings) -> list:
        """Each example's prediction from its features' outputs: word-level tags (first sub-token of each word;
        words cut off by max_length get 'O')."""
        pred = []
        for feature, logits in zip(features, outputs):
            first = torch.tensor(feature["first"], dtype=torch.bool)
            words = [label_names[j] for j in logits[first].argmax(-1).tolist()]
            pred.append(words + ["O"] * (feature["n_words"] - len(words)))
        return pred

    def describe(self, examples: list, features: list[dict]) -> str:
        """What the job log says of a data set beside its size."""
        return ""

    def metrics(self, examples: list, features: list[dict], predictions: list, lang: str) -> dict:
        truncated = sum(len(f["labels"]) and f["n_words"] > sum(f["first"]) for f in features)
        return {**sequence_metrics(self.task_type, [s.tags for s in examples], predictions),
                "truncated_sentences": int(truncated)}

    def baselines(self, examples: list, label_names: list[str], lang: str) -> dict:
        """{"majority", "chance"} on this test set, in the main metric's 0-1 scale (metrics.py)."""
        gold = [s.tags for s in examples]
        if self.task_type == "ner":
            return ner_baselines(gold, label_names)
        return accuracy_baselines([t for tags in gold for t in tags], len(label_names))

    def breakdown(self, examples: list, predictions: list, label_names: list[str]) -> dict:
        """What an evaluation adds per class (classification, multiple choice); NER has its per_type already."""
        return {}

    def warnings(self, examples: list, predictions: list) -> list[str]:
        """Predictions no working model gives: all one class where the gold answers are not."""
        return one_class_warning([t for s in examples for t in s.tags], [t for p in predictions for t in p], "word")


class TaskObjective(nn.Module):
    """forward(**batch) -> the family's summed loss: what `train.fit` trains."""

    def __init__(self, model: nn.Module, fam: "Family"):
        super().__init__()
        self.model, self.family = model, fam

    def forward(self, **batch) -> torch.Tensor:
        return self.family.loss(self.model, batch)


def pad_batch(examples: list[dict], pad_id: int) -> dict:
    """Token-classification features padded: input_ids, attention_mask, labels (IGNORE where padded)."""
    return Family("ner").collate(examples, pad_id)


def TokenClassificationObjective(model: nn.Module) -> TaskObjective:  # noqa: N802 - the name callers know
    return TaskObjective(model, Family("ner"))


class Classification(Family):
    """One sentence or a sentence pair -> one label, from the head on the first token; accuracy."""

    auto_class = "AutoModelForSequenceClassification"

    def read(self, spec):
        return read_classification(spec)

    def label_names(self, examples, hub_names):
        if not self.labelled:
            return []
        return list(hub_names) if hub_names else sorted({e.label for e in examples})

    def check(self, examples, label_names):
        known = set(label_names)
        bad = next((e for e in examples if e.label not in known), None)
        if bad is not None:
            raise DataError(f"{bad.where}: label {bad.label!r} is not in the source training labels {label_names}")

    def encode(self, tokenizer, examples, label_names, settings, train):
        index = {name: i for i, name in enumerate(label_names)}
        pairs = [e.pair for e in examples]
        encoded = tokenizer([e.text for e in examples], pairs if any(p is not None for p in pairs) else None,
                            truncation=True, max_length=settings.max_length)
        features = []
        for i, example in enumerate(examples):
            feature = {"input_ids": encoded["input_ids"][i], "label": index[example.label]}
            if "token_type_ids" in encoded:
                feature["token_type_ids"] = encoded["token_type_ids"][i]
            features.append(feature)
        return features

    def targets(self, features, width):
        return {"labels": torch.tensor([f["label"] for f in features], dtype=torch.long)}

    def count(self, batch):
        return len(batch["labels"])

    def loss(self, model, batch):
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return F.cross_entropy(model(**inputs).logits.float(), batch["labels"], reduction="sum")

    def outputs(self, out, row, feature):
        return out.logits[row].float().cpu()

    def decode(self, examples, features, outputs, label_names, settings):
        return [label_names[int(logits.argmax())] for logits in outputs]

    def metrics(self, examples, features, predictions, lang):
        correct = sum(p == e.label for e, p in zip(examples, predictions))
        return {"accuracy": correct / max(len(examples), 1), "n_examples": len(examples)}

    def classes(self, examples, label_names) -> list:
        return list(label_names)

    def baselines(self, examples, label_names, lang):
        return accuracy_baselines([e.label for e in examples], len(label_names))

    def breakdown(self, examples, predictions, label_names):
        return class_scores([e.label for e in examples], predictions, self.classes(examples, label_names))

    def warnings(self, examples, predictions):
        return one_class_warning([e.label for e in examples], list(predictions), "example")


class MultipleChoice(Classification):
    """A context and N choices: each (context, choice) scored by the head, the highest wins; accuracy."""

    auto_class = "AutoModelForMultipleChoice"
    labelled = False

    def read(self, spec):
        return read_multiple_choice(spec), None

    def check(self, examples, label_names):
        counts = {len(e.choices) for e in examples}
        if len(counts) > 1:
            raise DataError(f"{examples[0].where}: every example needs the same number of choices; found {sorted(counts)}")

    def encode(self, tokenizer, examples, label_names, settings, train):
        encoded = tokenizer([e.context for e in examples for _ in e.choices], [c for e in examples for c in e.choices],
                            truncation=True, max_length=settings.max_length)
        features, k = [], 0
        for example in examples:
            n = len(example.choices)
            feature = {"input_ids": encoded["input_ids"][k : k + n], "label": example.label}
            if "token_type_ids" in encoded:
                feature["token_type_ids"] = encoded["token_type_ids"][k : k + n]
            features.append(feature)
            k += n
        return features

    def length(self, feature):
        return max(len(ids) for ids in feature["input_ids"])

    def collate(self, features, pad_id, labels=True):
        """(examples, choices, tokens): every (context, choice) padded as one sequence, then grouped back."""
        width = max(self.length(f) for f in features)
        type_ids = [t for f in features for t in f["token_type_ids"]] if "token_type_ids" in features[0] else None
        flat = padded_inputs([ids for f in features for ids in f["input_ids"]], type_ids, pad_id, width)
        batch = {k: v.view(len(features), -1, width) for k, v in flat.items()}
        if labels:
            batch.update(self.targets(features, width))
        return batch

    def decode(self, examples, features, outputs, label_names, settings):
        return [int(logits.argmax()) for logits in outputs]

    def classes(self, examples, label_names):
        """The choice indices (every example has the same number of choices: `check`)."""
        return list(range(len(examples[0].choices))) if examples else []

    def baselines(self, examples, label_names, lang):
        chance = sum(1 / len(e.choices) for e in examples) / len(examples) if examples else 0.0
        return {"majority": majority_share([e.label for e in examples]), "chance": chance}


class QuestionAnswering(Family):
    """Extractive QA: start/end over windows of the context (doc_stride overlap), the best valid span of the
    n_best starts and ends (at most max_answer_length sub-tokens); exact match and F1 (MLQA's evaluation)."""

    auto_class = "AutoModelForQuestionAnswering"
    labelled = False

    def read(self, spec):
        return read_qa(spec), None

    def check(self, examples, label_names):
        pass

    def encode(self, tokenizer, examples, label_names, settings, train):
        if settings.doc_stride >= settings.max_length // 2:
            raise InputError(f"doc_stride={settings.doc_stride} must be under half of max_length={settings.max_length}"
                             " so that a context's windows move forward (e.g. max_length 384, doc_stride 128)")
        return encode_windows(tokenizer, examples, settings.max_length, settings.doc_stride, train)

    def targets(self, features, width):
        return {"start_positions": torch.tensor([f["start"] for f in features], dtype=torch.long),
                "end_positions": torch.tensor([f["end"] for f in features], dtype=torch.long)}

    def count(self, batch):
        return len(batch["start_positions"])

    def loss(self, model, batch):
        inputs = {k: v for k, v in batch.items() if k not in ("start_positions", "end_positions")}
        out = model(**inputs)
        return (F.cross_entropy(out.start_logits.float(), batch["start_positions"], reduction="sum")
                + F.cross_entropy(out.end_logits.float(), batch["end_positions"], reduction="sum")) / 2

    def outputs(self, out, row, feature):
        n = len(feature["input_ids"])
        return out.start_logits[row, :n].float().cpu(), out.end_logits[row, :n].float().cpu()

    def decode(self, examples, features, outputs, label_names, settings):
        return best_spans(examples, features, [o[0] for o in outputs], [o[1] for o in outputs],
                          settings.max_answer_length, settings.n_best)

    def describe(self, examples, features):
        misaligned = sum(e.misaligned for e in examples)
        missing = sum(not e.spans for e in examples)
        return (f", {len(features)} windows of the contexts (max_length and doc_stride); {misaligned} answer(s) not "
                f"at their offset ({missing} question(s) with no answer found in the context: trained to point at "
                "the first token)")

    def metrics(self, examples, features, predictions, lang):
        return {**qa_metrics(examples, predictions, lang), "windows": len(features)}

    def baselines(self, examples, label_names, lang):
        return qa_baselines(examples, lang)

    def warnings(self, examples, predictions):
        return one_class_warning([e.answers[0][0] for e in examples], list(predictions), "answer")


class NonFiniteScores(MadxError, ValueError):
    """The model's scores (logits) for some inputs are NaN or infinite: no prediction read from them means anything."""


FAMILIES = {"ner": Family, "pos": Family, "classification": Classification, "multiple_choice": MultipleChoice,
            "qa": QuestionAnswering}


def family(task_type: str) -> Family:
    if task_type not in FAMILIES:
        raise ValueError(f"task type {task_type!r}; use one of {tuple(FAMILIES)}")
    return FAMILIES[task_type](task_type)


@torch.no_grad()
def predict(model: nn.Module, fam: Family, examples: list, features: list[dict], label_names: list[str], settings,
            pad_id: int, batch_size: int = 64, device=None, mixed_precision: str = "no") -> list:
    """Every example's prediction, from length-grouped batches of its features.

    mixed_precision "bf16"/"fp16": a model wholly in that dtype (`madx evaluate` casts it so) runs as it
    is; one whose frozen base alone was cast (dev evaluation in task training: adapters and head stay
    fp32) runs under autocast, as training does."""
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
        with torch.autocast(device.type, dtype=dtype, enabled=mixed):
            out = model(**{k: v.to(device) for k, v in batch.items()})
        for row, i in enumerate(chunk):
            outputs[i] = fam.outputs(out, row, features[i])
    model.train(was_training)
    bad = sum(not _finite(output) for output in outputs)
    if bad:
        raise NonFiniteScores(f"the model's scores are NaN or infinite for {bad} of {len(outputs)} inputs")
    return fam.decode(examples, features, outputs, label_names, settings)


def _finite(output) -> bool:
    """Whether a feature's output (a tensor, or a tuple of them: QA's start and end) holds only finite numbers."""
    return all(bool(torch.isfinite(t).all()) for t in (output if isinstance(output, tuple) else (output,)))
