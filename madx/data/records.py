"""Labelled records from a local file or the hub, each with where it came from (file:line, or the hub row), for
the task families' readers (madx/tasks/): .jsonl (a record per line) or .json (a list of records, or SQuAD's
nested data/paragraphs/qas layout). Every error names the file and line (or the hub row) and what was expected.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core.sources import DataError, Source


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
            return squad_records(content, path), {}
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


def squad_records(content: dict, path: Path) -> list[tuple[str, dict]]:
    """SQuAD's nested JSON as flat QA records (id, question, context, answers {text, answer_start})."""
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


def record_field(record: dict, where: str, names: tuple, what: str, required: bool = True):
    """(key, value) of the first of `names` the record has: a missing required one is an error naming them."""
    key = next((k for k in names if k in record), None)
    if key is None:
        if required:
            raise DataError(f"{where}: no {what} field; expected one of {list(names)} (it has {sorted(record)})")
        return None, None
    return key, record[key]
