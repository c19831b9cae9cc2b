"""Labelled text data for sentence(-pair) classification, multiple choice and extractive QA.

Each reader takes the layouts of the hub datasets MAD-X users evaluate on and local files:

    classification    XNLI / AmericasNLI (premise, hypothesis, label), PAWS-X (sentence1, sentence2, label),
                      one sentence (text or sentence, label)
    multiple_choice   COPA / XCOPA (premise, question, choice1, choice2, label), SIQA (context, question,
                      answerA..C, label 1-3), or any (context or premise, [question], choices: [...], label 0-based)
    qa                SQuAD v1.1 / XQuAD / MLQA / TyDiQA-GoldP: (id, question, context, answers {text,
                      answer_start}), as hub rows, JSONL, or the nested SQuAD JSON file (data/paragraphs/qas)

Local files: .jsonl (a record per line) or .json (a list of records, or SQuAD's nested layout). Every error
names the file and line (or the hub row), the field, and what was expected.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..core.sources import DataError, Source

log = logging.getLogger(__name__)
TEXT_FIELDS = ("text", "sentence", "premise", "sentence1", "question1")
PAIR_FIELDS = ("hypothesis", "sentence2", "question2", "text_pair")
SIQA_ANSWERS = ("answerA", "answerB", "answerC")


@dataclass
class TextExample:
    text: str
    pair: str | None
    label: str
    where: str


@dataclass
class ChoiceExample:
    context: str
    choices: list
    label: int
    where: str


@dataclass
class QAExample:
    id: str
    question: str
    context: str
    answers: list  # [(text, start)]: start is the character offset of the answer in the context
    where: str
    misaligned: int = 0  # answers whose text is not at their offset (found elsewhere, or nowhere)
    spans: list = field(default_factory=list)  # [(start, end)] of the answers found in the context


# ---- records from a file or the hub


def read_records(spec) -> tuple[list[tuple[str, dict]], dict]:
    """[(where, record)] and the hub dataset's label names per column ({} for local files)."""
    source = Source.parse(spec)
    if source.is_hub:
        dataset = source.load_hub()
        names = {k: f.names for k, f in dataset.features.items() if hasattr(f, "names")}
        return [(f"{source}#row{i}", dict(row)) for i, row in enumerate(dataset)], names
    source.check_exists()
    path = source.path
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not valid UTF-8 ({err}); save the file as UTF-8") from None
    if path.suffix == ".json":
        try:
            content = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
        if isinstance(content, dict) and "data" in content:
            return _squad_records(content, path), {}
        if not isinstance(content, list):
            raise DataError(f"{path}: expected a list of records or SQuAD's {{\"data\": [...]}}")
        return [(f"{path}#{i}", r) for i, r in enumerate(content)], {}
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append((f"{path}:{number}", json.loads(line)))
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{number}: not valid JSON ({err.msg})") from None
    if not records:
        raise DataError(f"{path}: no records found")
    return records, {}


def _squad_records(content: dict, path: Path) -> list[tuple[str, dict]]:
    records = []
    for a, article in enumerate(content["data"]):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            for q, qa in enumerate(paragraph.get("qas", [])):
                answers = qa.get("answers", [])
                records.append((f"{path}#data[{a}].paragraphs[{p}].qas[{q}]", {
                    "id": qa.get("id"), "question": qa.get("question"), "context": paragraph.get("context"),
                    "answers": {"text": [x["text"] for x in answers], "answer_start": [x["answer_start"] for x in answers]},
                }))
    return records


def _field(record: dict, where: str, names: tuple, what: str, required: bool = True):
    key = next((k for k in names if k in record), None)
    if key is None:
        if required:
            raise DataError(f"{where}: no {what} field; expected one of {list(names)} (it has {sorted(record)})")
        return None, None
    return key, record[key]


def _label_name(value, key: str, names: dict, where: str) -> str:
    if key in names and isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < len(names[key]):
            raise DataError(f"{where}: {key}={value} is outside the dataset's labels {names[key]}")
        return names[key][value]
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    raise DataError(f"{where}: {key}={value!r}; a label is a name or an integer")


# ---- the three families


def read_classification(spec) -> tuple[list[TextExample], list[str] | None]:
    records, names = read_records(spec)
    examples, unlabelled = [], 0
    for where, r in records:
        text_key, text = _field(r, where, TEXT_FIELDS, "text")
        _, pair = _field(r, where, PAIR_FIELDS, "second text", required=False)
        label_key, label = _field(r, where, ("label",), "label")
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


def read_multiple_choice(spec) -> list[ChoiceExample]:
    records, _ = read_records(spec)
    examples = []
    for where, r in records:
        if "choice1" in r:  # COPA / XCOPA: the question says whether the choice is a cause or an effect
            _, premise = _field(r, where, ("premise",), "premise")
            context, choices, label = f"{premise} {r.get('question', '')}".strip(), [r["choice1"], r.get("choice2")], r.get("label")
        elif "answerA" in r:  # SIQA: labels 1..3
            _, context = _field(r, where, ("context",), "context")
            context = f"{context} {r.get('question', '')}".strip()
            choices = [r.get(k) for k in SIQA_ANSWERS]
            label = int(r["label"]) - 1 if str(r.get("label", "")).strip().isdigit() else r.get("label")
        else:
            _, context = _field(r, where, ("context", "premise"), "context")
            context = f"{context} {r.get('question', '')}".strip()
            _, choices = _field(r, where, ("choices", "endings"), "choices")
            label = r.get("label")
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise DataError(f"{where}: choices must be two or more texts, got {choices!r}")
        if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < len(choices):
            raise DataError(f"{where}: label={label!r} must be the index of the right choice (0..{len(choices) - 1}; "
                            "SIQA's 1..3)")
        examples.append(ChoiceExample(context, choices, label, where))
    return examples


def read_qa(spec) -> list[QAExample]:
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
