"""The data and metrics of K-adapters' knowledge tasks (madx/adapters/kadapter.py; Wang et al. 2021):

- linguistic: dependency heads from CoNLL-U treebanks (Universal Dependencies): each word's head, scored by the
  unlabelled attachment score (UAS) and, with relations, the labelled one (LAS);
- factual: relation classification between two marked spans of a text (JSONL: text, subject and object spans as
  [start, end) character offsets, relation), T-REx style, scored by accuracy and macro F1.

Bad input names the file and line. The dependency task trains a linguistic K-adapter (`DependencyHead` over
madx.knowledge_features; madx/training/kadapter.py), the relation task a factual one (`RelationHead`); each is
scored on its dev set beside its trivial baseline (attaching every word to a neighbour; the majority relation).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..core.sources import DataError
from ..core.tensors import IGNORE


@dataclass
class Tree:
    """One sentence of a treebank: its words, each word's head (1-based; 0 = the root) and relation."""

    words: list[str]
    heads: list[int]
    relations: list[str]
    where: str  # "file:line" of its first word


@dataclass
class RelationExample:
    text: str
    subject: tuple[int, int]  # [start, end) character offsets into text
    object: tuple[int, int]
    relation: str
    where: str


def read_conllu(path: str | Path) -> list[Tree]:
    """The trees of a CoNLL-U file: the ten tab-separated columns (ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS
    MISC); multi-word token lines (1-2) and empty nodes (1.1) are skipped, as UD's own parsers score words."""
    trees, words, heads, relations, start = [], [], [], [], None
    path = Path(path)

    def close() -> None:
        nonlocal words, heads, relations, start
        if words:
            for i, head in enumerate(heads):
                if not 0 <= head <= len(words):
                    raise DataError(f"{path}:{start + i}: head {head} of word {i + 1} is outside its sentence "
                                    f"(0 for the root, else 1..{len(words)})")
            trees.append(Tree(words, heads, relations, f"{path}:{start}"))
        words, heads, relations, start = [], [], [], None

    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            close()
            continue
        if line.startswith("#"):
            continue
        columns = line.split("\t")
        if len(columns) != 10:
            raise DataError(f"{path}:{number}: {len(columns)} tab-separated columns, CoNLL-U has 10 (ID FORM LEMMA "
                            "UPOS XPOS FEATS HEAD DEPREL DEPS MISC)")
        word_id, form, head, relation = columns[0], columns[1], columns[6], columns[7]
        if "-" in word_id or "." in word_id:
            continue
        if not word_id.isdigit() or int(word_id) != len(words) + 1:
            raise DataError(f"{path}:{number}: word ID {word_id!r}, expected {len(words) + 1} (IDs count 1, 2, ... "
                            "within each sentence)")
        if not head.isdigit():
            raise DataError(f"{path}:{number}: HEAD {head!r} is not a word index (0 for the root)")
        start = start or number
        words.append(form)
        heads.append(int(head))
        relations.append(relation)
    close()
    if not trees:
        raise DataError(f"{path}: no sentences found; expected CoNLL-U (10 tab-separated columns per word)")
    return trees


def attachment_scores(gold: list[Tree], heads: list[list[int]], relations: list[list[str]] | None = None) -> dict:
    """UAS (the share of words whose predicted head is the gold one) and, given relations, LAS (head and relation
    both right), over every word of the test set; `words` is their number."""
    if len(heads) != len(gold) or any(len(h) != len(t.heads) for h, t in zip(heads, gold)):
        raise ValueError("one predicted head per word of every gold tree")
    pairs = [(g, p) for tree, predicted in zip(gold, heads) for g, p in zip(tree.heads, predicted)]
    scores = {"uas": sum(g == p for g, p in pairs) / len(pairs), "words": len(pairs)}
    if relations is not None:
        right = sum(gh == ph and gr == pr for tree, ph_s, pr_s in zip(gold, heads, relations)
                    for gh, ph, gr, pr in zip(tree.heads, ph_s, tree.relations, pr_s))
        scores["las"] = right / len(pairs)
    return scores


def read_relations(path: str | Path) -> list[RelationExample]:
    """JSONL: {"text", "subject": [start, end], "object": [start, end], "relation"}, offsets in characters."""
    path, examples = Path(path), []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{where}: not valid JSON ({err.msg})") from None
        missing = [key for key in ("text", "subject", "object", "relation") if key not in record]
        if missing:
            raise DataError(f"{where}: no {missing[0]!r} field; each line needs text, subject, object, relation")
        text = record["text"]
        spans = {}
        for key in ("subject", "object"):
            span = record[key]
            if (not isinstance(span, list) or len(span) != 2 or not all(isinstance(x, int) for x in span)
                    or not 0 <= span[0] < span[1] <= len(text)):
                raise DataError(f"{where}: {key} {span!r} is not a span of the text: give [start, end) character "
                                f"offsets with 0 <= start < end <= {len(text)} (the text's length)")
            spans[key] = (span[0], span[1])
        examples.append(RelationExample(text, spans["subject"], spans["object"], str(record["relation"]), where))
    if not examples:
        raise DataError(f"{path}: no examples found")
    return examples


def relation_scores(gold: list[str], predicted: list[str]) -> dict:
    """Accuracy and macro F1 over the gold relations (a relation never predicted and never gold counts nowhere)."""
    if len(gold) != len(predicted):
        raise ValueError("one prediction per example")
    hits, guessed, wanted = Counter(), Counter(predicted), Counter(gold)
    for g, p in zip(gold, predicted):
        hits[g] += g == p
    f1 = []
    for label in wanted:
        precision = hits[label] / guessed[label] if guessed[label] else 0.0
        recall = hits[label] / wanted[label]
        f1.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return {"accuracy": sum(hits.values()) / len(gold), "macro_f1": sum(f1) / len(f1)}


# ---- the linguistic K-adapter's training task: each word's head, from the knowledge features


class DependencyHead(nn.Module):
    """Scores word i's head j as (W_dep f_i) . (W_head f_j) + (w . f_j) over the features (the encoder's and the
    K-adapters'); position 0 (the sequence's first token) stands for the root."""

    def __init__(self, features: int, size: int = 128):
        super().__init__()
        self.dependent, self.head = nn.Linear(features, size), nn.Linear(features, size)
        self.prior = nn.Linear(features, 1)

    def forward(self, features: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, length, length) scores, padding columns at -inf."""
        scores = self.dependent(features) @ self.head(features).transpose(1, 2) + self.prior(features).transpose(1, 2)
        return scores.masked_fill(attention_mask[:, None, :] == 0, float("-inf"))


def encode_trees(trees: list[Tree], tokenizer, max_length: int) -> list[dict]:
    """Each tree's sub-tokens and, on each word's first sub-token, the position of its head's first sub-token (the
    root's: 0); other positions IGNORE. A tree cut by max_length keeps the words whose heads are kept."""
    encoded = []
    for tree in trees:
        enc = tokenizer(tree.words, is_split_into_words=True, truncation=True, max_length=max_length)
        first = {}
        for position, word in enumerate(enc.word_ids()):
            if word is not None and word not in first:
                first[word] = position
        labels = [IGNORE] * len(enc["input_ids"])
        for word, position in first.items():
            head = tree.heads[word]
            if head == 0 or head - 1 in first:
                labels[position] = 0 if head == 0 else first[head - 1]
        positions = [first.get(word, -1) for word in range(len(tree.words))]  # -1: cut off by max_length
        encoded.append({"input_ids": enc["input_ids"], "labels": labels, "positions": positions})
    return encoded


def neighbour_baseline(trees: list[Tree]) -> float:
    """The UAS of the better of the two trivial parsers: every word attached to the word before it (the first to
    the root), or to the word after it (the last to the root)."""
    left = [[i for i in range(len(tree.words))] for tree in trees]
    right = [[i + 2 if i + 1 < len(tree.words) else 0 for i in range(len(tree.words))] for tree in trees]
    return max(attachment_scores(trees, heads)["uas"] for heads in (left, right))


def collate_trees(batch: list[dict], pad_id: int) -> dict:
    length = max(len(example["input_ids"]) for example in batch)
    ids = torch.full((len(batch), length), pad_id)
    labels = torch.full((len(batch), length), IGNORE)
    for i, example in enumerate(batch):
        n = len(example["input_ids"])
        ids[i, :n], labels[i, :n] = torch.tensor(example["input_ids"]), torch.tensor(example["labels"])
    return {"input_ids": ids, "attention_mask": (ids != pad_id).long(), "labels": labels}


def dependency_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each word's head over the positions of its sentence."""
    return F.cross_entropy(scores.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)


# ---- the factual K-adapter's training task: the relation between two marked spans


class RelationHead(nn.Module):
    """The relation of a (subject, object) pair from the mean features of each span's sub-tokens, concatenated."""

    def __init__(self, features: int, relations: int):
        super().__init__()
        self.classifier = nn.Linear(2 * features, relations)

    def forward(self, features: torch.Tensor, subject: torch.Tensor, obj: torch.Tensor) -> torch.Tensor:
        """subject, obj: (batch, length) 0/1 masks of each span's sub-tokens."""
        def pooled(mask):
            return (features * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return self.classifier(torch.cat([pooled(subject), pooled(obj)], dim=-1))


def encode_relations(examples: list[RelationExample], tokenizer, max_length: int, labels: list[str]) -> list[dict]:
    """Each example's sub-tokens, the masks of the sub-tokens inside its subject and object spans, and its label's
    index; a span cut off by max_length (or covering no sub-token) is an error naming the example."""
    encoded = []
    for example in examples:
        enc = tokenizer(example.text, truncation=True, max_length=max_length, return_offsets_mapping=True)
        masks = {}
        for key, (start, end) in (("subject", example.subject), ("object", example.object)):
            masks[key] = [int(e > s and s < end and e > start) for s, e in enc["offset_mapping"]]
            if not any(masks[key]):
                raise DataError(f"{example.where}: the {key} span [{start}, {end}) covers no sub-token of the first "
                                f"{max_length} (cut by max_length); raise max_length or shorten the text")
        encoded.append({"input_ids": enc["input_ids"], "subject": masks["subject"], "object": masks["object"],
                        "label": labels.index(example.relation)})
    return encoded


def collate_relations(batch: list[dict], pad_id: int) -> dict:
    length = max(len(example["input_ids"]) for example in batch)
    out = {key: torch.full((len(batch), length), pad_id if key == "input_ids" else 0)
           for key in ("input_ids", "subject", "object")}
    for i, example in enumerate(batch):
        for key in out:
            out[key][i, :len(example[key])] = torch.tensor(example[key])
    return {**out, "attention_mask": (out["input_ids"] != pad_id).long(),
            "labels": torch.tensor([example["label"] for example in batch])}


# ---- the two tasks as train_kadapter sees them (the config's knowledge.<name>.type)


class DependencyTask:
    """Each word's head (linguistic knowledge)."""

    read = staticmethod(read_conllu)
    metric = "uas"

    def __init__(self, examples: list[Tree], features: int):
        self.head = DependencyHead(features)

    def encode(self, examples, tokenizer, max_length):
        return encode_trees(examples, tokenizer, max_length)

    def collate(self, batch, pad_id):
        return collate_trees(batch, pad_id)

    def loss(self, features, batch):
        return dependency_loss(self.head(features, batch["attention_mask"]), batch["labels"])

    def predict(self, features, batch) -> list:
        """Each position's predicted head position (a row per example)."""
        return self.head(features, batch["attention_mask"]).argmax(-1).tolist()

    def scores(self, examples: list[Tree], encoded: list[dict], predicted: list) -> dict:
        """UAS over every word (a word cut off by max_length, or whose head is, counts as wrong) and the baseline."""
        heads = []
        for feature, positions in zip(encoded, predicted):
            word_at = {position: word + 1 for word, position in enumerate(feature["positions"]) if position >= 0}
            word_at[0] = 0  # the first token stands for the root
            heads.append([word_at.get(positions[p], -1) if p >= 0 else -1 for p in feature["positions"]])
        return {**attachment_scores(examples, heads), "baseline_uas": neighbour_baseline(examples)}


class RelationTask:
    """The relation between two spans (factual knowledge)."""

    read = staticmethod(read_relations)
    metric = "accuracy"

    def __init__(self, examples: list[RelationExample], features: int):
        self.labels = sorted({example.relation for example in examples})
        self.head = RelationHead(features, len(self.labels))

    def encode(self, examples, tokenizer, max_length):
        return encode_relations(examples, tokenizer, max_length, self.labels)

    def collate(self, batch, pad_id):
        return collate_relations(batch, pad_id)

    def loss(self, features, batch):
        return F.cross_entropy(self.head(features, batch["subject"], batch["object"]), batch["labels"])

    def predict(self, features, batch) -> list:
        return self.head(features, batch["subject"], batch["object"]).argmax(-1).tolist()

    def scores(self, examples: list[RelationExample], encoded: list[dict], predicted: list) -> dict:
        gold = [example.relation for example in examples]
        majority = Counter(gold).most_common(1)[0][1] / len(gold)
        return {**relation_scores(gold, [self.labels[i] for i in predicted]), "baseline_accuracy": majority}


KNOWLEDGE_TASKS = {"dependency": DependencyTask, "relation": RelationTask}
