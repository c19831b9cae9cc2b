"""Labelled token-classification data (NER, POS): CoNLL, JSONL or a hub dataset, tokenized for training."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..core.sources import DataError, Source

TAG_FIELDS = ("ner_tags", "tags", "pos_tags", "upos")
IGNORE = -100


@dataclass
class Sentence:
    tokens: list
    tags: list
    where: str  # "file:line" of the sentence's first token, for error messages


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
