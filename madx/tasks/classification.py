"""Sentence(-pair) classification (XNLI, PAWS-X, sentiment): one label per sentence or pair, from the head on the
first token; accuracy, per-class scores and the confusion matrix; the reader of its layouts (at the end)."""

from __future__ import annotations

import dataclasses
import logging
import random
from dataclasses import dataclass

from ..adapters.heads import HeadLayout
from ..core.sources import DataError
from ..data.records import read_records, record_field
from .base import Family, example_loss, example_targets
from .metrics import accuracy, accuracy_baselines, class_scores, one_class_warning

TEXT_FIELDS = ("text", "sentence", "premise", "sentence1", "question1")
PAIR_FIELDS = ("hypothesis", "sentence2", "question2", "text_pair")
log = logging.getLogger(__name__)


@dataclass
class TextExample:
    text: str
    pair: str | None
    label: str
    where: str


class Classification(Family):
    """A sentence, or a pair (premise and hypothesis), and its label."""

    task_types = ("classification",)
    auto_class = "AutoModelForSequenceClassification"
    head_type = "classification"
    head_layout = HeadLayout(classifier_dense=True, pooled=True, bias=True)
    example_type = TextExample
    labelled = True

    @classmethod
    def main_metric(cls, task_type):
        return "accuracy"

    # data
    def read(self, spec):
        return read_classification(spec)

    def romanize(self, examples, roman):
        return [dataclasses.replace(e, text=roman.text(e.text), pair=None if e.pair is None else roman.text(e.pair))
                for e in examples]

    def label_names(self, examples, hub_names):
        """The hub dataset's names in its order, or the training data's labels sorted."""
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

    # batches
    def targets(self, features, width):
        return example_targets(features)

    def loss(self, model, batch):
        return example_loss(model, batch)

    # prediction
    def decode(self, examples, features, outputs, label_names, settings):
        return [label_names[int(logits.argmax())] for logits in outputs]

    # scores
    def metrics(self, examples, features, predictions, lang):
        return accuracy([e.label for e in examples], predictions)

    def baselines(self, examples, label_names, lang):
        return accuracy_baselines([e.label for e in examples], len(label_names))

    def breakdown(self, examples, predictions, label_names):
        return class_scores([e.label for e in examples], predictions, list(label_names))

    def warnings(self, examples, predictions):
        return one_class_warning([e.label for e in examples], list(predictions), "example")

    # the demo
    def demo_records(self, sentences, count, seed):
        """Which kind of name (person, place, company) the sentence starts its names with."""
        rng = random.Random(f"{seed}:{self.task_type}")
        records = []
        for i in range(count):
            asked = sentences.asking(rng, i, first=True)
            records.append({"text": " ".join(asked.tokens), "label": asked.kind_name})
        return records


# ---- the reader


def _label_name(value, key: str, names: dict, where: str) -> str:
    if key in names and isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < len(names[key]):
            raise DataError(f"{where}: {key}={value} is outside the dataset's labels {names[key]}")
        return names[key][value]
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    raise DataError(f"{where}: {key}={value!r}; a label is a name or an integer")


def read_classification(spec) -> tuple[list[TextExample], list[str] | None]:
    """XNLI / AmericasNLI (premise, hypothesis, label), PAWS-X (sentence1, sentence2, label), or one sentence
    (text or sentence, label); (examples, the hub dataset's label names or None)."""
    records, names = read_records(spec)
    examples, unlabelled = [], 0
    for where, r in records:
        text_key, text = record_field(r, where, TEXT_FIELDS, "text")
        _, pair = record_field(r, where, PAIR_FIELDS, "second text", required=False)
        label_key, label = record_field(r, where, ("label",), "label")
        for key, value in ((text_key, text), ("pair", pair)):
            if value is not None and not isinstance(value, str):
                raise DataError(f"{where}: {key} must be text, got {type(value).__name__}")
        if isinstance(label, int) and label < 0:
            unlabelled += 1  # the hub's "no label" (-1), as in SNLI's unannotated rows: counted, not used
            continue
        examples.append(TextExample(text, pair, _label_name(label, label_key, names, where), where))
    if unlabelled:
        log.warning("%s: %d of %d rows have no label (-1) and are left out", spec, unlabelled, len(records))
    if not examples:
        raise DataError(f"{spec}: no labelled examples")
    return examples, names.get("label")
