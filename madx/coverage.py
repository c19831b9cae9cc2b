"""How well the base tokenizer covers a language: unknown-token share and sub-words per word.

A language whose script the base vocabulary lacks turns into <unk>s, and no adapter can recover
what the tokenizer threw away (a known limit of MAD-X for unseen scripts; Pfeiffer et al. 2021,
"UNKs Everywhere"). madx measures it per language and warns.
"""

from __future__ import annotations

import itertools
import json
import logging
import unicodedata
from collections import Counter
from pathlib import Path

log = logging.getLogger(__name__)
UNK_WARNING = 0.05  # share of unknown tokens above which a language's script counts as badly covered
FAR_ABOVE = 2.0  # sub-words per word this many times the source's: the base vocabulary barely covers the language
NEW_SCRIPT_HINT = ("madx_translit (romanize it: languages.<lang>.romanize) or madx_emb (new embeddings: "
                   "languages.<lang>.embeddings); ask for them with languages.<lang>.setups")


def script_of(char: str) -> str | None:
    """The Unicode script of a letter, from its name (LATIN, CYRILLIC, ARABIC, CJK, ...); None for others."""
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    return name.split(" ")[0] if name else None


def coverage(tokenizer, lines, max_lines: int = 2000) -> dict:
    words = tokens = unknown = 0
    scripts = Counter()
    for line in itertools.islice(lines, max_lines):
        ids = tokenizer(line, add_special_tokens=False)["input_ids"]
        words += len(line.split())
        tokens += len(ids)
        unknown += sum(i == tokenizer.unk_token_id for i in ids)
        scripts.update(filter(None, map(script_of, line)))
    return {
        "unk_rate": unknown / max(tokens, 1),
        "subwords_per_word": tokens / max(words, 1),
        "sample_words": words,
        "script": scripts.most_common(1)[0][0] if scripts else None,
    }


def new_script_reasons(stats: dict, source: dict | None = None, base_scripts=None) -> list[str]:
    """Why a language needs a new-script setup (madx_translit, madx_emb), if it does: an unknown-token rate or
    sub-words per word far above the source's, or a script none of the base model's training languages has
    (`base_scripts`, when that is known, as for the demo's base model)."""
    reasons = []
    source_unk = source["unk_rate"] if source else 0.0
    if stats["unk_rate"] > max(UNK_WARNING, 2 * source_unk):
        reasons.append(f"{100 * stats['unk_rate']:.1f}% unknown tokens" + (
            f" (source: {100 * source_unk:.1f}%)" if source else ""))
    if source and stats["subwords_per_word"] > FAR_ABOVE * source["subwords_per_word"]:
        reasons.append(f"{stats['subwords_per_word']:.2f} sub-words per word (source: "
                       f"{source['subwords_per_word']:.2f})")
    if base_scripts and stats.get("script") and stats["script"] not in base_scripts:
        reasons.append(f"{stats['script'].lower()} script, which the base model was not trained on "
                       f"({', '.join(s.lower() for s in sorted(base_scripts))})")
    return reasons


def base_scripts(base_model: str) -> list[str] | None:
    """The scripts of the base model's pretraining corpora, when it records them (madx build-base does)."""
    info = Path(base_model) / "madx_base.json"
    if not info.is_file():
        return None
    return json.loads(info.read_text()).get("scripts")


def warn_if_badly_covered(lang: str, stats: dict) -> str | None:
    if stats["unk_rate"] <= UNK_WARNING:
        return None
    message = (f"{lang}: {100 * stats['unk_rate']:.1f}% of tokens are unknown to the base tokenizer: its script "
               "is badly covered, and a language adapter cannot recover what the tokenizer drops (MAD-X's known "
               "limit for unseen scripts); expect poor transfer: try " + NEW_SCRIPT_HINT + ", or a base model whose "
               "vocabulary covers it")
    log.warning(message)
    return message
