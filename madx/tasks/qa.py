"""Extractive QA: contexts cut into overlapping windows, spans read back from start/end logits, and MLQA's
exact match and F1 (answer normalisation per language, the maximum over the gold answers)."""

from __future__ import annotations

import random
import re
import string
import unicodedata
from collections import Counter

import torch

from ..data.texts import QAExample
from .metrics import BASELINE_SAMPLES, BASELINE_SEED

# articles removed before comparing, per language (MLQA's evaluation script's lists)
ARTICLES = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "ar": r"\sال^|ال",
}
PER_CHARACTER = ("zh",)  # languages written without spaces: every CJK character is a token
_CJK = re.compile(r"[\u4e00-\u9fa5]")


def _is_punctuation(ch: str) -> bool:
    """ASCII punctuation, or any Unicode punctuation character (categories P*: "，", "。", "«", "¿" ...)."""
    return ch in string.punctuation or unicodedata.category(ch).startswith("P")


def normalize_answer(text: str, lang: str) -> list[str]:
    """Lower case, no punctuation (any Unicode punctuation), no articles, then tokens: whitespace-separated, and
    for Chinese every CJK character on its own."""
    text = "".join(ch for ch in text.lower() if not _is_punctuation(ch))
    if lang in ARTICLES:
        text = re.sub(ARTICLES[lang], " ", text)
    if lang not in PER_CHARACTER:
        return text.split()
    tokens, run = [], ""
    for ch in text:
        if _CJK.match(ch):
            tokens += run.split() + [ch]
            run = ""
        else:
            run += ch
    return tokens + run.split()


def answer_f1(prediction: str, gold: str, lang: str) -> float:
    pred, ref = normalize_answer(prediction, lang), normalize_answer(gold, lang)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str, lang: str) -> float:
    return float(normalize_answer(prediction, lang) == normalize_answer(gold, lang))


def qa_metrics(examples: list[QAExample], predictions: list[str], lang: str) -> dict:
    """Mean exact match and F1 over questions, each the maximum over its gold answers."""
    em = [max(exact_match(p, g, lang) for g, _ in e.answers) for e, p in zip(examples, predictions)]
    f1 = [max(answer_f1(p, g, lang) for g, _ in e.answers) for e, p in zip(examples, predictions)]
    n = max(len(examples), 1)
    return {"exact_match": sum(em) / n, "f1": sum(f1) / n, "n_examples": len(examples),
            "misaligned_answers": sum(e.misaligned for e in examples)}


# ---- windows


def encode_windows(tokenizer, examples: list[QAExample], max_length: int, doc_stride: int, train: bool) -> list[dict]:
    """One feature per window of each (question, context): the context cut into windows of at most
    max_length sub-tokens with the question, consecutive windows overlapping by doc_stride sub-tokens.
    Training windows carry the answer's start/end token (the first token, <s>/[CLS], when the window does not
    hold it, or the question has no answer in its context)."""
    encoded = tokenizer([e.question for e in examples], [e.context for e in examples], truncation="only_second",
                        max_length=max_length, stride=doc_stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True)
    features = []
    for j, example_index in enumerate(encoded["overflow_to_sample_mapping"]):
        sequence_ids = encoded.sequence_ids(j)
        offsets = [o if s == 1 else None for o, s in zip(encoded["offset_mapping"][j], sequence_ids)]
        feature = {"input_ids": encoded["input_ids"][j], "example": example_index, "offsets": offsets}
        if "token_type_ids" in encoded:
            feature["token_type_ids"] = encoded["token_type_ids"][j]
        if train:
            feature["start"], feature["end"] = _answer_tokens(offsets, examples[example_index].spans)
        features.append(feature)
    return features


def _answer_tokens(offsets: list, spans: list) -> tuple[int, int]:
    if not spans:
        return 0, 0
    start_char, end_char = spans[0]
    inside = [i for i, o in enumerate(offsets) if o is not None]
    if not inside or offsets[inside[0]][0] > start_char or offsets[inside[-1]][1] < end_char:
        return 0, 0
    start = next(i for i in inside if offsets[i][1] > start_char)
    end = next(i for i in reversed(inside) if offsets[i][0] < end_char)
    return start, end


def best_spans(examples: list[QAExample], features: list[dict], start_logits: list, end_logits: list,
               max_answer_length: int, n_best: int) -> list[str]:
    """Each question's answer: over its windows, of the n_best start and n_best end tokens in the context, the
    span (end >= start, at most max_answer_length sub-tokens) with the highest start + end logit."""
    best: list = [(-float("inf"), "")] * len(examples)
    for feature, starts, ends in zip(features, start_logits, end_logits):
        offsets, example = feature["offsets"], examples[feature["example"]]
        top_starts = torch.topk(starts, min(n_best, len(starts))).indices.tolist()
        top_ends = torch.topk(ends, min(n_best, len(ends))).indices.tolist()
        for s in top_starts:
            for e in top_ends:
                if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                    continue
                score = float(starts[s] + ends[e])
                if score > best[feature["example"]][0]:
                    best[feature["example"]] = (score, example.context[offsets[s][0] : offsets[e][1]])
    return [text for _, text in best]


def qa_baselines(examples: list, lang: str) -> dict:
    """F1 of answering every question with the test set's most frequent answer text, and the mean F1 of a random
    span of the context as long as the mean gold answer (in words; in characters for languages written without
    spaces), BASELINE_SAMPLES seeded draws."""
    if not examples:
        return {"majority": 0.0, "chance": 0.0}
    texts = [e.answers[0][0] for e in examples]
    majority = qa_metrics(examples, [Counter(texts).most_common(1)[0][0]] * len(examples), lang)["f1"]
    by_character = lang in PER_CHARACTER
    units = (lambda text: [ch for ch in text if not ch.isspace()]) if by_character else str.split
    joiner = "" if by_character else " "
    length = max(1, round(sum(len(units(t)) for t in texts) / len(texts)))
    rng = random.Random(BASELINE_SEED)
    draws = []
    for _ in range(BASELINE_SAMPLES):
        spans = []
        for example in examples:
            context = units(example.context)
            start = rng.randrange(max(1, len(context) - length + 1))
            spans.append(joiner.join(context[start : start + length]))
        draws.append(qa_metrics(examples, spans, lang)["f1"])
    return {"majority": majority, "chance": sum(draws) / len(draws)}
