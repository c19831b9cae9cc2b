"""Token classification (ner, pos): a label per word from the head on its first sub-token; seqeval's entity-level
P/R/F1 (micro, and F1 per type) for NER, token accuracy for POS; the readers of CoNLL, JSONL and hub data and the
word-aligned encoding (at the end)."""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..adapters.heads import HeadLayout
from ..core.sources import DataError, Source
from ..core.tensors import IGNORE
from .base import Family, TaskObjective, inputs_of, pad
from .metrics import BASELINE_SAMPLES, BASELINE_SEED, accuracy_baselines, one_class_warning

ENTITY_TYPES = ("ner",)  # scored by entities (seqeval); the other tagging types by tokens
TAG_FIELDS = ("ner_tags", "tags", "pos_tags", "upos")


@dataclass
class Sentence:
    tokens: list
    tags: list
    where: str  # "file:line" of the sentence's first token, for error messages


class TokenClassification(Family):
    """ner, pos: CoNLL / JSONL / hub sentences, a tag per word."""

    task_types = ("ner", "pos")
    auto_class = "AutoModelForTokenClassification"
    head_type = "tagging"
    head_layout = HeadLayout(linear="classifier")
    example_type = Sentence
    labelled = True
    demo_suffix = ".conll"

    @classmethod
    def main_metric(cls, task_type):
        return "f1" if task_type in ENTITY_TYPES else "accuracy"

    @classmethod
    def task_type_of_head(cls, label_names):
        """ner when every label is O or BIO (B-X, I-X), else pos."""
        return "ner" if all(n == "O" or n[:2] in ("B-", "I-") for n in label_names) else "pos"

    # data
    def read(self, spec):
        return read_labelled(spec)

    def romanize(self, examples, roman):
        """Word by word: each word stays one word, so its tag stays with it."""
        return [dataclasses.replace(e, tokens=roman.words(e.tokens)) for e in examples]

    def label_names(self, examples, hub_names):
        """The hub dataset's names, or those the training data uses."""
        return label_names_of(examples, hub_names)

    def check(self, examples, label_names):
        check_labels(examples, label_names)

    def encode(self, tokenizer, examples, label_names, settings, train):
        return encode(tokenizer, examples, label_names, settings.max_length,
                      settings.label_all_subtokens if train else False)

    # batches
    def targets(self, features, width):
        return {"labels": pad([f["labels"] for f in features], IGNORE, width)}

    def count(self, batch):
        return int((batch["labels"] != IGNORE).sum())

    def loss(self, model, batch):
        logits = model(**inputs_of(batch)).logits  # (B, T, L)
        return F.cross_entropy(logits.flatten(0, 1).float(), batch["labels"].flatten(), ignore_index=IGNORE,
                               reduction="sum")

    # prediction
    def outputs(self, out, row, feature):
        return out.logits[row, : len(feature["input_ids"])].float().cpu()

    def decode(self, examples, features, outputs, label_names, settings):
        """Word-level tags (first sub-token of each word; words cut off by max_length get 'O')."""
        pred = []
        for feature, logits in zip(features, outputs):
            first = torch.tensor(feature["first"], dtype=torch.bool)
            words = [label_names[j] for j in logits[first].argmax(-1).tolist()]
            pred.append(words + ["O"] * (feature["n_words"] - len(words)))
        return pred

    # scores
    def metrics(self, examples, features, predictions, lang):
        truncated = sum(len(f["labels"]) and f["n_words"] > sum(f["first"]) for f in features)
        return {**sequence_metrics(self.task_type, [s.tags for s in examples], predictions),
                "truncated_sentences": int(truncated)}

    def baselines(self, examples, label_names, lang):
        gold = [s.tags for s in examples]
        if self.task_type in ENTITY_TYPES:
            return ner_baselines(gold, label_names)
        return accuracy_baselines([t for tags in gold for t in tags], len(label_names))

    def warnings(self, examples, predictions):
        """NER's per-type scores are in its metrics already (no breakdown); a collapsed tagger is warned of."""
        return one_class_warning([t for s in examples for t in s.tags], [t for p in predictions for t in p], "word")

    # the demo
    @property
    def makes_demo(self):
        return self.task_type in ENTITY_TYPES  # the demo's sentences carry entity tags, not parts of speech

    def demo_records(self, sentences, count, seed):
        rng = random.Random(seed)
        return [sentences.tagged(rng) for _ in range(count)]

    def demo_text(self, records):
        """CoNLL: a token and its tag per line, a blank line after each sentence."""
        return "".join("".join(f"{t}\t{g}\n" for t, g in zip(tokens, tags)) + "\n" for tokens, tags in records)


def pad_batch(examples: list[dict], pad_id: int) -> dict:
    """Token-classification features padded: input_ids, attention_mask, labels (IGNORE where padded)."""
    return TokenClassification("ner").collate(examples, pad_id)


def TokenClassificationObjective(model: nn.Module) -> TaskObjective:  # noqa: N802 - the name callers know
    return TaskObjective(model, TokenClassification("ner"))


# ---- metrics


def sequence_metrics(task_type: str, gold: list[list[str]], pred: list[list[str]]) -> dict:
    if task_type not in TokenClassification.task_types:
        raise ValueError(f"task type {task_type!r}; token classification is one of {TokenClassification.task_types}")
    n_tokens = sum(len(g) for g in gold)
    if task_type not in ENTITY_TYPES:
        correct = sum(g == p for gs, ps in zip(gold, pred) for g, p in zip(gs, ps))
        return {"accuracy": correct / max(n_tokens, 1), "n_sentences": len(gold), "n_tokens": n_tokens}
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    per_type = {k: {"f1": float(v["f1-score"]), "support": int(v["support"])} for k, v in report.items()
                if not k.endswith(" avg")}
    return {
        "precision": float(precision_score(gold, pred, zero_division=0)),
        "recall": float(recall_score(gold, pred, zero_division=0)),
        "f1": float(f1_score(gold, pred, zero_division=0)),
        "per_type": per_type,
        "n_sentences": len(gold),
        "n_tokens": n_tokens,
    }


def ner_baselines(gold: list[list[str]], label_names: list[str]) -> dict:
    """seqeval entity F1 of tagging every word with the most frequent tag, and the mean F1 of uniformly random tags
    over the head's labels (BASELINE_SAMPLES seeded draws).

    The majority baseline is the honest majority-class one, and on NER it is 0.0 on almost every test set: "O" is
    the most frequent tag, and tagging all words "O" finds no entity. Chance is then the floor that says something:
    random tags find some entities by luck (one-word persons in every third word, tags O or B-PER: P 1/3, R 1/2, F1
    0.4), so a model must beat it to have learned where entities are."""
    from seqeval.metrics import f1_score

    tags = Counter(t for sentence in gold for t in sentence)
    if not tags:
        return {"majority": 0.0, "chance": 0.0}
    most = tags.most_common(1)[0][0]
    majority = float(f1_score(gold, [[most] * len(s) for s in gold], zero_division=0))
    rng = random.Random(BASELINE_SEED)
    draws = [float(f1_score(gold, [[rng.choice(label_names) for _ in s] for s in gold], zero_division=0))
             for _ in range(BASELINE_SAMPLES)]
    return {"majority": majority, "chance": sum(draws) / len(draws)}


# ---- the readers (CoNLL, JSONL, the hub) and the encoding


def read_labelled(spec, *, tag_field: str | None = None) -> tuple[list[Sentence], list[str] | None]:
    """(sentences, label names if the source defines them, as a hub ClassLabel does)."""
    source = Source.parse(spec)
    if source.is_hub:
        return _read_hub(source, tag_field)
    source.check_exists()
    if source.path.name.endswith(".jsonl"):
        return _read_jsonl(source.path, tag_field), None
    return _read_conll(source.path), None


def _read_conll(path: Path) -> list[Sentence]:
    sentences, tokens, tags, start, n_columns = [], [], [], 0, None
    with open(path, encoding="utf-8") as f:
        try:
            lines = list(enumerate(f, 1))
        except UnicodeDecodeError as err:
            raise DataError(f"{path}: not valid UTF-8 ({err}); save the file as UTF-8") from None
    for number, line in lines + [(len(lines) + 1, "")]:
        columns = line.split()
        if not columns or columns[0] == "-DOCSTART-":
            if tokens:
                sentences.append(Sentence(tokens, tags, f"{path}:{start}"))
            tokens, tags = [], []
            continue
        n_columns = n_columns or len(columns)
        if len(columns) != n_columns or n_columns < 2:
            raise DataError(
                f"{path}:{number}: {len(columns)} column(s), expected {max(n_columns, 2)} "
                "(token first, tag last, separated by tabs or spaces; a blank line between sentences)"
            )
        if not tokens:
            start = number
        tokens.append(columns[0])
        tags.append(columns[-1])
    if not sentences:
        raise DataError(f"{path}: no sentences found; expected CoNLL columns (token ... tag)")
    return sentences


def _read_jsonl(path: Path, tag_field: str | None) -> list[Sentence]:
    sentences = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{number}: not valid JSON ({err.msg})") from None
            field = tag_field or next((k for k in TAG_FIELDS if k in record), None)
            if "tokens" not in record or field not in record:
                raise DataError(f"{path}:{number}: needs 'tokens' and a tag field ({' or '.join(TAG_FIELDS)})")
            tokens, tags = record["tokens"], record[field]
            if len(tokens) != len(tags) or not all(isinstance(t, str) for t in tags):
                raise DataError(f"{path}:{number}: {len(tokens)} tokens but {len(tags)} tags, or tags that are not "
                                "label names (integer tags need a hub dataset's label names)")
            if tokens:
                sentences.append(Sentence(list(tokens), list(tags), f"{path}:{number}"))
    if not sentences:
        raise DataError(f"{path}: no sentences found")
    return sentences


def _read_hub(source: Source, tag_field: str | None) -> tuple[list[Sentence], list[str] | None]:
    dataset = source.load_hub()
    field = source.column or tag_field or next((k for k in TAG_FIELDS if k in dataset.column_names), None)
    for column in ("tokens", field):
        if column not in dataset.column_names:
            raise DataError(f"{source}: no column {column!r}; it has {dataset.column_names}; set column=")
    feature = dataset.features[field]
    names = getattr(getattr(feature, "feature", None), "names", None)
    sentences = []
    for i, (tokens, tags) in enumerate(zip(dataset["tokens"], dataset[field])):
        if names is not None:
            tags = [names[t] for t in tags]
        if tokens:
            sentences.append(Sentence(list(tokens), [str(t) for t in tags], f"{source}#{i}"))
    return sentences, names


def label_names_of(sentences: list[Sentence], names: list[str] | None = None) -> list[str]:
    """The label set, from the source training data: a hub ClassLabel's order, else O first then sorted."""
    if names:
        return list(names)
    seen = {tag for s in sentences for tag in s.tags}
    return sorted(seen, key=lambda t: (t != "O", t))


def check_labels(sentences: list[Sentence], label_names: list[str]) -> None:
    known = set(label_names)
    for sentence in sentences:
        for token, tag in zip(sentence.tokens, sentence.tags):
            if tag not in known:
                raise DataError(
                    f"{sentence.where}: label {tag!r} (token {token!r}) is not in the source training labels "
                    f"{label_names}; map it to one of them or drop it"
                )


def encode(tokenizer, sentences: list[Sentence], label_names: list[str], max_length: int,
           label_all_subtokens: bool = False) -> list[dict]:
    """Per sentence: input_ids, labels (first sub-token of each word; the rest IGNORE unless label_all)."""
    if not getattr(tokenizer, "is_fast", False):
        raise DataError(f"{type(tokenizer).__name__} is not a fast tokenizer; word alignment needs one")
    label_id = {name: i for i, name in enumerate(label_names)}
    encoded = tokenizer([s.tokens for s in sentences], is_split_into_words=True, truncation=True,
                        max_length=max_length)
    examples = []
    for i, sentence in enumerate(sentences):
        word_ids = encoded.word_ids(i)
        first = [w is not None and (j == 0 or word_ids[j - 1] != w) for j, w in enumerate(word_ids)]
        labels = [
            label_id[sentence.tags[w]] if w is not None and (is_first or label_all_subtokens) else IGNORE
            for w, is_first in zip(word_ids, first)
        ]
        examples.append({"input_ids": encoded["input_ids"][i], "labels": labels, "first": first,
                         "n_words": len(sentence.tokens)})
    return examples
