"""Metrics: seqeval entity-level P/R/F1 (micro, and F1 per type) for NER; token accuracy for POS; accuracy for
classification and multiple choice, with per-class scores and the confusion matrix; exact match and F1 for QA
(madx/tasks/qa.py). And each family's trivial baselines on a test set, in its main metric's 0-1 scale: `majority`
(always the test set's most frequent gold answer) and `chance` (uniformly random answers)."""

from __future__ import annotations

import random
from collections import Counter

SEQUENCE_TYPES = ("ner", "pos")
TASK_TYPES = (*SEQUENCE_TYPES, "classification", "multiple_choice", "qa")
ACCURACY_TYPES = ("pos", "classification", "multiple_choice")


def sequence_metrics(task_type: str, gold: list[list[str]], pred: list[list[str]]) -> dict:
    if task_type not in SEQUENCE_TYPES:
        raise ValueError(f"task type {task_type!r}; token classification is one of {SEQUENCE_TYPES}")
    n_tokens = sum(len(g) for g in gold)
    if task_type == "pos":
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


def main_metric(task_type: str) -> str:
    return "accuracy" if task_type in ACCURACY_TYPES else "f1"


# ---- per class


def class_scores(gold: list, pred: list, labels: list) -> dict:
    """Per-class precision, recall, F1 and support over `labels`, and the confusion matrix (rows: gold, columns:
    predicted, in the order of `labels`); labels are written as strings (JSON keys)."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, pred):
        matrix[index[g]][index[p]] += 1
    per_class = {}
    for i, label in enumerate(labels):
        right, support, predicted = matrix[i][i], sum(matrix[i]), sum(row[i] for row in matrix)
        precision = right / predicted if predicted else 0.0
        recall = right / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if right else 0.0
        per_class[str(label)] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return {"per_class": per_class, "confusion": {"labels": [str(label) for label in labels], "matrix": matrix}}


def one_class_warning(gold: list, pred: list, unit: str) -> list[str]:
    """A warning when every prediction is the same while the gold answers are not: a collapsed model."""
    if pred and len(set(pred)) == 1 and len(set(gold)) > 1:
        return [f"every {unit} is predicted {pred[0]!r}, while the gold {unit}s take {len(set(gold))} different "
                "values: the model has collapsed to one answer"]
    return []


# ---- trivial baselines

BASELINE_SAMPLES = 5  # random predictions averaged for a chance baseline without a closed form (NER, QA)
BASELINE_SEED = 0  # the same test set always gets the same chance baseline


def majority_share(gold: list) -> float:
    """The accuracy of always answering the most frequent gold value."""
    return Counter(gold).most_common(1)[0][1] / len(gold) if gold else 0.0


def accuracy_baselines(gold: list, n_classes: int) -> dict:
    """Accuracy of the most frequent gold class, and of uniform guessing among n_classes (1/n_classes)."""
    return {"majority": majority_share(gold), "chance": 1 / n_classes if n_classes else 0.0}


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

