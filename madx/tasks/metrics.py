"""What the families' scores share: per-class scores with the confusion matrix (classification, multiple choice),
the warning of a model collapsed onto one answer, and the trivial baselines on a test set, in the main metric's
0-1 scale: `majority` (always the test set's most frequent gold answer) and `chance` (uniformly random answers).
A family's own metrics are in its module (tagging.py: seqeval, qa.py: MLQA's exact match and F1)."""

from __future__ import annotations

from collections import Counter

# ---- per example, per class


def accuracy(gold: list, pred: list) -> dict:
    """The share of examples predicted right (sentence classification, multiple choice)."""
    return {"accuracy": sum(p == g for g, p in zip(gold, pred)) / max(len(gold), 1), "n_examples": len(gold)}


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
