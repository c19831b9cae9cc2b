"""Unlabelled corpora for MLM: read, tokenize once, cut into fixed-length blocks, cache on disk."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..core.locks import file_lock
from ..core.sources import DataError, Source

log = logging.getLogger(__name__)
CACHE_VERSION = "1"


def read_lines(source: Source, *, text_field: str = "text") -> Iterator[str]:
    """Non-empty lines of text. Invalid UTF-8 lines are skipped and counted (logged), never decoded wrongly."""
    if source.is_hub:
        yield from _hub_lines(source, source.column or text_field)
        return
    source.check_exists()
    path = source.path
    opener = gzip.open if path.suffix == ".gz" else open
    is_jsonl = path.name.endswith((".jsonl", ".jsonl.gz"))
    field = source.column or text_field
    bad = 0
    with opener(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                bad += 1
                continue
            if not line:
                continue
            if is_jsonl:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(f"{path}:{number}: not valid JSON ({err.msg}); one JSON object per line") from None
                if not isinstance(record, dict) or field not in record:
                    raise DataError(f"{path}:{number}: no {field!r} field; set the text field (column=)")
                line = str(record[field]).strip()
                if not line:
                    continue
            yield line
    if bad:
        log.warning("%s: skipped %d line(s) that are not valid UTF-8", path, bad)


def _hub_lines(source: Source, column: str) -> Iterator[str]:
    """The column's non-empty texts, from the dataset whole or, streaming, as the stream yields its rows."""
    dataset = source.load_hub()
    if source.streaming:
        for number, row in enumerate(dataset, 1):
            if column not in row:
                raise DataError(f"{source}: row {number} has no column {column!r}; it has {sorted(row)}; set column=")
            text = row[column]
            if text and text.strip():
                yield text.strip()
        return
    if column not in dataset.column_names:
        raise DataError(f"{source}: no column {column!r}; it has {dataset.column_names}; set column=")
    for text in dataset[column]:
        if text and text.strip():
            yield text.strip()


def tokenizer_fingerprint(tokenizer) -> str:
    vocab = sorted(tokenizer.get_vocab().items())
    return hashlib.sha256(json.dumps([type(tokenizer).__name__, vocab]).encode()).hexdigest()[:16]


def cache_key(tokenizer, sources: list[Source], seq_len: int, max_tokens: int | None, line_by_line: bool,
              romanize=None) -> str:
    parts = [CACHE_VERSION, tokenizer_fingerprint(tokenizer), str(seq_len), str(max_tokens), str(line_by_line)]
    if romanize is not None:  # a romanized corpus is its own cache entry (named with the romanizer's version)
        parts.append(f"romanize={romanize.identity}")
    parts += [s.fingerprint() for s in sources]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def _batches(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    batch = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _token_stream(tokenizer, lines: Iterable[str], max_tokens: int | None, batch_size: int = 1000) -> Iterator[list[int]]:
    # batches through the fast (Rust) tokenizer, which spreads each batch over the CPU's cores
    total = 0
    for batch in _batches(lines, batch_size):
        for ids in tokenizer(batch, add_special_tokens=False)["input_ids"]:
            yield ids
            total += len(ids)
            if max_tokens and total >= max_tokens:
                return


def corpus_lines(source: Source, romanize=None) -> Iterator[str]:
    """The lines a language adapter reads: `read_lines`, romanized when `romanize` (a translit.Romanizer) is given."""
    lines = read_lines(source)
    return lines if romanize is None else map(romanize.text, lines)


def _tokenized(tokenizer, source: Source, max_tokens: int | None, num_proc: int, romanize=None) -> Iterator[list[int]]:
    """Token ids per line; num_proc > 1 tokenizes with `datasets` over that many processes."""
    if num_proc <= 1:
        yield from _token_stream(tokenizer, corpus_lines(source, romanize), max_tokens)
        return
    import datasets

    lines = datasets.Dataset.from_dict({"text": list(corpus_lines(source, romanize))})
    encoded = lines.map(lambda batch: tokenizer(batch["text"], add_special_tokens=False), batched=True,
                        num_proc=num_proc, remove_columns=["text"])
    total = 0
    for ids in encoded["input_ids"]:
        yield ids
        total += len(ids)
        if max_tokens and total >= max_tokens:
            return


def build_blocks(tokenizer, sources: list[Source], seq_len: int, max_tokens: int | None = None,
                 line_by_line: bool = False, num_proc: int = 1, romanize=None) -> np.ndarray:
    """(n_blocks, seq_len) int32: [CLS] + seq_len-2 tokens of the concatenated corpus + [SEP].

    line_by_line: one line per block instead (cut to fit, padded), as run_mlm's --line_by_line;
    sentences then start at position 1, which small models trained on short sentences learn faster.
    """
    body = seq_len - 2
    chunks = [np.asarray(toks, dtype=np.int32) for source in sources
              for toks in _tokenized(tokenizer, source, max_tokens, num_proc, romanize)]
    if line_by_line:
        return _line_blocks(tokenizer, [c for c in chunks if len(c)], seq_len)
    ids = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    if max_tokens:
        ids = ids[:max_tokens]
    n_blocks = len(ids) // body
    if n_blocks == 0:
        raise DataError(
            f"{', '.join(map(str, sources))}: only {len(ids)} tokens, fewer than one block of {seq_len}; "
            "add text or lower seq_len"
        )
    body_ids = ids[: n_blocks * body].reshape(n_blocks, body)
    cls = np.full((n_blocks, 1), tokenizer.cls_token_id, dtype=np.int32)
    sep = np.full((n_blocks, 1), tokenizer.sep_token_id, dtype=np.int32)
    return np.concatenate([cls, body_ids, sep], axis=1)


def _line_blocks(tokenizer, lines: list[np.ndarray], seq_len: int) -> np.ndarray:
    if not lines:
        raise DataError("the corpus has no tokens")
    blocks = np.full((len(lines), seq_len), tokenizer.pad_token_id, dtype=np.int32)
    for i, ids in enumerate(lines):
        _fill_line_block(blocks[i], tokenizer, ids)
    return blocks


def _fill_line_block(block: np.ndarray, tokenizer, ids: np.ndarray) -> None:
    """[CLS] + the line's first len(block)-2 tokens + [SEP] into a block of padding."""
    ids = ids[: len(block) - 2]
    block[0] = tokenizer.cls_token_id
    block[1 : len(ids) + 1] = ids
    block[len(ids) + 1] = tokenizer.sep_token_id


def iter_blocks(tokenizer, sources: list[Source], seq_len: int, max_tokens: int | None = None,
                line_by_line: bool = False, romanize=None) -> Iterator[np.ndarray]:
    """The blocks of `build_blocks`, one (seq_len,) int32 array at a time, as the sources' lines arrive: a streamed
    corpus is never held whole (the same text gives the same blocks, in the same order)."""
    chunks = (np.asarray(ids, dtype=np.int32) for source in sources
              for ids in _token_stream(tokenizer, corpus_lines(source, romanize), max_tokens))
    if line_by_line:
        for ids in chunks:
            if len(ids):
                block = np.full(seq_len, tokenizer.pad_token_id, dtype=np.int32)
                _fill_line_block(block, tokenizer, ids)
                yield block
        return
    body = seq_len - 2
    blocks_left = max_tokens // body if max_tokens else None  # build_blocks: the first max_tokens tokens, cut
    pending, have = [], 0
    for ids in chunks:
        pending.append(ids)
        have += len(ids)
        if have < body:
            continue
        joined, start = np.concatenate(pending), 0  # joined once per line: a long line is not copied per block
        while have - start >= body and blocks_left != 0:
            yield np.concatenate([[tokenizer.cls_token_id], joined[start:start + body],
                                  [tokenizer.sep_token_id]]).astype(np.int32)
            start += body
            blocks_left = None if blocks_left is None else blocks_left - 1
        if blocks_left == 0:
            return
        pending, have = [joined[start:]], have - start


def load_blocks(tokenizer, sources: list[Source], seq_len: int, cache_dir: str | os.PathLike,
                max_tokens: int | None = None, line_by_line: bool = False, num_proc: int = 1,
                romanize=None) -> np.ndarray:
    """The corpus as blocks (romanized first with a translit.Romanizer), tokenized once: later runs (any process)
    read the cached Arrow file."""
    import datasets

    datasets.disable_progress_bars()
    cache_dir = Path(cache_dir)
    key = cache_key(tokenizer, sources, seq_len, max_tokens, line_by_line, romanize)
    final = cache_dir / f"blocks-{key}"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(cache_dir / f".blocks-{key}.lock"):  # two jobs on one corpus: one builds, one waits
        if not (final / "dataset_info.json").exists():
            blocks = build_blocks(tokenizer, sources, seq_len, max_tokens, line_by_line, num_proc, romanize)
            tmp = Path(tempfile.mkdtemp(prefix=f".blocks-{key}.", dir=cache_dir))
            try:
                datasets.Dataset.from_dict({"input_ids": blocks}).save_to_disk(str(tmp))
                (tmp / "sources.json").write_text(json.dumps([str(s) for s in sources]))
                shutil.rmtree(final, ignore_errors=True)
                os.replace(tmp, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            log.info("tokenized %s into %d blocks of %d -> %s", [str(s) for s in sources], len(blocks), seq_len, final)
            return blocks
    dataset = datasets.load_from_disk(str(final)).with_format("numpy")
    return np.asarray(dataset["input_ids"], dtype=np.int32)
