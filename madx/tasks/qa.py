"""Extractive QA (SQuAD, MLQA, XQuAD): contexts cut into overlapping windows, spans read back from start/end
logits, and MLQA's exact match and F1 (answer normalisation per language, the maximum over the gold answers);
the reader of SQuAD's layouts (at the end)."""

from __future__ import annotations

import dataclasses
import random
import re
import string
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..adapters.heads import HeadLayout
from ..core.errors import InputError
from ..core.sources import DataError
from ..data.records import read_records
from .base import Family, inputs_of
from .metrics import BASELINE_SAMPLES, BASELINE_SEED, one_class_warning

TARGETS = ("start_positions", "end_positions")


@dataclass
class QAExample:
    id: str
    question: str
    context: str
    answers: list  # [(text, start)]: start is the character offset of the answer in the context
    where: str
    misaligned: int = 0  # answers whose text is not at their offset (found elsewhere, or nowhere)
    spans: list = field(default_factory=list)  # [(start, end)] of the answers found in the context


class QuestionAnswering(Family):
    """Start/end over windows of the context (doc_stride overlap), the best valid span of the n_best starts and
    ends (at most max_answer_length sub-tokens); exact match and F1 (MLQA's evaluation)."""

    task_types = ("qa",)
    auto_class = "AutoModelForQuestionAnswering"
    head_type = "question_answering"
    head_layout = HeadLayout(linear="qa_outputs", num_labels=2)
    example_type = QAExample

    @classmethod
    def main_metric(cls, task_type):
        return "f1"

    # data
    def read(self, spec):
        return read_qa(spec), None

    def romanize(self, examples, roman):
        return [romanize_qa(e, roman) for e in examples]

    def encode(self, tokenizer, examples, label_names, settings, train):
        if settings.doc_stride >= settings.max_length // 2:
            raise InputError(f"doc_stride={settings.doc_stride} must be under half of max_length={settings.max_length}"
                             " so that a context's windows move forward (e.g. max_length 384, doc_stride 128)")
        return encode_windows(tokenizer, examples, settings.max_length, settings.doc_stride, train)

    # batches
    def targets(self, features, width):
        return {"start_positions": torch.tensor([f["start"] for f in features], dtype=torch.long),
                "end_positions": torch.tensor([f["end"] for f in features], dtype=torch.long)}

    def count(self, batch):
        return len(batch["start_positions"])

    def loss(self, model, batch):
        out = model(**inputs_of(batch, TARGETS))
        return (F.cross_entropy(out.start_logits.float(), batch["start_positions"], reduction="sum")
                + F.cross_entropy(out.end_logits.float(), batch["end_positions"], reduction="sum")) / 2

    # prediction
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

    # scores
    def metrics(self, examples, features, predictions, lang):
        return {**qa_metrics(examples, predictions, lang), "windows": len(features)}

    def baselines(self, examples, label_names, lang):
        return qa_baselines(examples, lang)

    def warnings(self, examples, predictions):
        return one_class_warning([e.answers[0][0] for e in examples], list(predictions), "answer")

    # the demo
    def demo_records(self, sentences, count, seed):
        """A who / where / which-company question, in a sentence that names another kind too, answered by the
        name's span."""
        rng = random.Random(f"{seed}:{self.task_type}")
        records = []
        for i in range(count):
            asked = sentences.asking(rng, i, first=False)
            start = len(" ".join(asked.tokens[: asked.start])) + (1 if asked.start else 0)
            records.append({"id": f"{seed}-{i}", "question": asked.question, "context": " ".join(asked.tokens),
                            "answers": {"text": [" ".join(asked.name)], "answer_start": [start]}})
        return records


def romanize_qa(example: QAExample, roman) -> QAExample:
    """The question, context and answers romanized, the answers' offsets moved to where the romanized context has
    them."""
    context, where = roman.spans(example.context, [c for span in example.spans for c in span])
    spans = [(where[s], where[t]) for s, t in example.spans]
    # each answer: the romanized span it was found at (its text as the romanized context has it), or the answer
    # text romanized alone when it was found nowhere (it is then scored, never pointed at)
    answers, found = [], iter(spans)
    for text, start in example.answers:
        if locate(example.context, text, start) is not None:
            s, t = next(found)
            answers.append((context[s:t], s))
        else:
            answers.append((roman.text(text), 0))
    return dataclasses.replace(example, question=roman.text(example.question), context=context, answers=answers,
                               spans=spans)

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


# ---- the reader


def read_qa(spec) -> list[QAExample]:
    """SQuAD v1.1 / XQuAD / MLQA / TyDiQA-GoldP: (id, question, context, answers {text, answer_start}), as hub
    rows, JSONL, or the nested SQuAD JSON file."""
    records, _ = read_records(spec)
    examples = []
    for where, r in records:
        for key in ("question", "context", "answers"):
            if key not in r:
                raise DataError(f"{where}: no {key!r} field; a QA record has id, question, context and answers "
                                "{text: [...], answer_start: [...]} (SQuAD's layout)")
        answers = r["answers"]
        if isinstance(answers, list):  # [{"text", "answer_start"}]
            answers = {"text": [a["text"] for a in answers], "answer_start": [a["answer_start"] for a in answers]}
        texts, starts = answers.get("text"), answers.get("answer_start")
        if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts) or not texts:
            raise DataError(f"{where}: answers must be {{text: [...], answer_start: [...]}} of equal, non-zero length")
        example = QAExample(str(r.get("id", where)), r["question"], r["context"], list(zip(texts, starts)), where)
        for text, start in example.answers:
            span = locate(example.context, text, start)
            example.misaligned += span is None or span[0] != start
            if span is not None:
                example.spans.append(span)
        examples.append(example)
    return examples


def locate(context: str, text: str, start: int) -> tuple[int, int] | None:
    """The answer's (start, end) character span: at its offset, else its occurrence nearest to it, else None."""
    if context[start : start + len(text)] == text:
        return start, start + len(text)
    found = [i for i in range(len(context)) if context.startswith(text, i)] if text else []
    if not found:
        return None
    nearest = min(found, key=lambda i: abs(i - start))
    return nearest, nearest + len(text)
