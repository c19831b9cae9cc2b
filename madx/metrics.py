"""Metrics: seqeval entity-level P/R/F1 (micro, and F1 per type) for NER; token accuracy for POS; accuracy for
classification and multiple choice; exact match and F1 for QA (madx/qa.py)."""

from __future__ import annotations

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
