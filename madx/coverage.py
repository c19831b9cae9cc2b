"""How well the base tokenizer covers a language: unknown-token share and sub-words per word.

A language whose script the base vocabulary lacks turns into <unk>s, and no adapter can recover
what the tokenizer threw away (a known limit of MAD-X for unseen scripts; Pfeiffer et al. 2021,
"UNKs Everywhere"). madx measures it per language and warns.
"""

from __future__ import annotations

import itertools
import logging

log = logging.getLogger(__name__)
UNK_WARNING = 0.05  # share of unknown tokens above which a language's script counts as badly covered


def coverage(tokenizer, lines, max_lines: int = 2000) -> dict:
    words = tokens = unknown = 0
    for line in itertools.islice(lines, max_lines):
        ids = tokenizer(line, add_special_tokens=False)["input_ids"]
        words += len(line.split())
        tokens += len(ids)
        unknown += sum(i == tokenizer.unk_token_id for i in ids)
    return {
        "unk_rate": unknown / max(tokens, 1),
        "subwords_per_word": tokens / max(words, 1),
        "sample_words": words,
    }


def warn_if_badly_covered(lang: str, stats: dict) -> str | None:
    if stats["unk_rate"] <= UNK_WARNING:
        return None
    message = (f"{lang}: {100 * stats['unk_rate']:.1f}% of tokens are unknown to the base tokenizer: its script "
               "is badly covered, and a language adapter cannot recover what the tokenizer drops (MAD-X's known "
               "limit for unseen scripts); expect poor transfer, or use a base model whose vocabulary covers it")
    log.warning(message)
    return message
