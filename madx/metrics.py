"""Metrics: seqeval entity-level P/R/F1 (micro, and F1 per type) for NER; token accuracy for POS."""

from __future__ import annotations

TASK_TYPES = ("ner", "pos")


def sequence_metrics(task_type: str, gold: list[list[str]], pred: list[list[str]]) -> dict:
    if task_type not in TASK_TYPES:
        raise ValueError(f"task type {task_type!r}; use one of {TASK_TYPES}")
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
    return "accuracy" if task_type == "pos" else "f1"
