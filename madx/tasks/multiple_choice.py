"""Multiple choice (COPA / XCOPA, SIQA): a context and N choices, each (context, choice) scored by the head, the
highest wins; accuracy, and per-choice scores with the confusion matrix; the reader of its layouts (at the end)."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

from ..adapters.heads import HeadLayout
from ..core.sources import DataError
from ..data.records import read_records, record_field
from .base import Family, example_loss, example_targets, padded_inputs
from .metrics import accuracy, class_scores, majority_share, one_class_warning

SIQA_ANSWERS = ("answerA", "answerB", "answerC")


@dataclass
class ChoiceExample:
    context: str
    choices: list
    label: int
    where: str


class MultipleChoice(Family):
    """The label is the index of the right choice; the head has no label names."""

    task_types = ("multiple_choice",)
    auto_class = "AutoModelForMultipleChoice"
    head_type = "multiple_choice"
    head_layout = HeadLayout(pooled=True, choices=True)
    example_type = ChoiceExample

    @classmethod
    def main_metric(cls, task_type):
        return "accuracy"

    # data
    def read(self, spec):
        return read_multiple_choice(spec), None

    def romanize(self, examples, roman):
        return [dataclasses.replace(e, context=roman.text(e.context), choices=[roman.text(c) for c in e.choices])
                for e in examples]

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

    def num_choices(self, examples):
        return len(examples[0].choices)

    # batches
    def collate(self, features, pad_id, labels=True):
        """(examples, choices, tokens): every (context, choice) padded as one sequence, then grouped back."""
        width = max(self.length(f) for f in features)
        type_ids = [t for f in features for t in f["token_type_ids"]] if "token_type_ids" in features[0] else None
        flat = padded_inputs([ids for f in features for ids in f["input_ids"]], type_ids, pad_id, width)
        batch = {k: v.view(len(features), -1, width) for k, v in flat.items()}
        if labels:
            batch.update(self.targets(features, width))
        return batch

    def targets(self, features, width):
        return example_targets(features)

    def loss(self, model, batch):
        return example_loss(model, batch)

    # prediction
    def decode(self, examples, features, outputs, label_names, settings):
        return [int(logits.argmax()) for logits in outputs]

    # scores
    def metrics(self, examples, features, predictions, lang):
        return accuracy([e.label for e in examples], predictions)

    def baselines(self, examples, label_names, lang):
        chance = sum(1 / len(e.choices) for e in examples) / len(examples) if examples else 0.0
        return {"majority": majority_share([e.label for e in examples]), "chance": chance}

    def breakdown(self, examples, predictions, label_names):
        """Per choice index (every example has the same number of choices: `check`)."""
        choices = list(range(len(examples[0].choices))) if examples else []
        return class_scores([e.label for e in examples], predictions, choices)

    def warnings(self, examples, predictions):
        return one_class_warning([e.label for e in examples], list(predictions), "example")

    # the demo
    def demo_records(self, sentences, count, seed):
        """Which of two names fills the gap: the sentence's own, or a name of another kind; the right one first or
        second equally often over each round of kinds."""
        rng = random.Random(f"{seed}:{self.task_type}")
        records = []
        for i in range(count):
            asked = sentences.asking(rng, i, first=True)
            choices = [" ".join(asked.name), " ".join(sentences.other_name(rng, asked.kind))]
            label = (i // len(sentences.kinds)) % 2
            if label:
                choices.reverse()
            context = " ".join([*asked.tokens[: asked.start], sentences.gap, *asked.tokens[asked.end :]])
            records.append({"context": context, "choices": choices, "label": label})
        return records


# ---- the reader


def read_multiple_choice(spec) -> list[ChoiceExample]:
    """COPA / XCOPA (premise, question, choice1, choice2, label), SIQA (context, question, answerA..C, label 1-3),
    or any (context or premise, [question], choices: [...], label 0-based)."""
    records, _ = read_records(spec)
    examples = []
    for where, r in records:
        if "choice1" in r:  # COPA / XCOPA: the question says whether the choice is a cause or an effect
            _, premise = record_field(r, where, ("premise",), "premise")
            context, choices, label = f"{premise} {r.get('question', '')}".strip(), [r["choice1"], r.get("choice2")], r.get("label")
        elif "answerA" in r:  # SIQA: labels 1..3
            _, context = record_field(r, where, ("context",), "context")
            context = f"{context} {r.get('question', '')}".strip()
            choices = [r.get(k) for k in SIQA_ANSWERS]
            label = int(r["label"]) - 1 if str(r.get("label", "")).strip().isdigit() else r.get("label")
        else:
            _, context = record_field(r, where, ("context", "premise"), "context")
            context = f"{context} {r.get('question', '')}".strip()
            _, choices = record_field(r, where, ("choices", "endings"), "choices")
            label = r.get("label")
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise DataError(f"{where}: choices must be two or more texts, got {choices!r}")
        if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < len(choices):
            raise DataError(f"{where}: label={label!r} must be the index of the right choice (0..{len(choices) - 1}; "
                            "SIQA's 1..3)")
        examples.append(ChoiceExample(context, choices, label, where))
    return examples
