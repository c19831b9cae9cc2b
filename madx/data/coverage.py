"""How well the base tokenizer covers a language: unknown-token share and sub-words per word.

A language whose script the base vocabulary lacks turns into <unk>s, and no adapter can recover
what the tokenizer threw away (a known limit of MAD-X for unseen scripts; Pfeiffer et al. 2021,
"UNKs Everywhere"). madx measures it per language and warns.

A word is what spaces separate, except in scripts written without spaces between words (Chinese,
Japanese, Thai, Lao, Khmer, Burmese, Tibetan, ...): there a whitespace "word" is a clause or a
whole line, so each of their characters counts as one unit instead. The language's dominant script
decides its unit ("unit": word or character); fertilities compare only in the same unit.
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
FAR_ABOVE = 2.0  # sub-words per unit this many times the source's (comparable units): the base barely covers it
# scripts written without spaces between words: their characters are the unit of fertility
SPACELESS = frozenset({"CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR", "TIBETAN", "JAVANESE",
                       "BALINESE"})
# a vocabulary that has a script's characters needs at most one sub-word per character (one per code point, however
# few pieces it learned for the script); byte fallback or byte-level pieces take 3 per character (UTF-8)
CHARACTER_SPLIT = 1.5
NEW_SCRIPT_HINT = ("madx_translit (romanize it: languages.<lang>.romanize) or madx_emb (new embeddings: "
                   "languages.<lang>.embeddings); ask for them with languages.<lang>.setups")
_SCRIPT_ALIASES = {"IDEOGRAPHIC": "CJK", "KATAKANA-HIRAGANA": "KATAKANA"}  # 々, ー: marks of Han and kana text


def _script_name(char: str) -> str | None:
    words = unicodedata.name(char, "").split(" ")
    if words[0] in ("FULLWIDTH", "HALFWIDTH") and len(words) > 1:  # ａ, ｶ: the same script, another width
        words = words[1:]
    return _SCRIPT_ALIASES.get(words[0], words[0]) or None


def script_of(char: str) -> str | None:
    """The Unicode script of a letter, from its name (LATIN, CYRILLIC, ARABIC, CJK, ...); None for others."""
    return _script_name(char) if char.isalpha() else None


def _spaceless(char: str) -> bool:
    """A letter or mark (Thai vowels and tones, Khmer and Burmese signs) of a script written without spaces."""
    return unicodedata.category(char)[0] in "LM" and _script_name(char) in SPACELESS


def character_units(line: str) -> int:
    """The units of a line of a space-less script: each of its characters (letters and marks, code points) counts
    one, and every run of other letters or digits (a Latin name, a number) one, as a word would."""
    units = 0
    for token in line.split():
        for spaceless, run in itertools.groupby(token, _spaceless):
            run = list(run)
            units += len(run) if spaceless else any(ch.isalnum() for ch in run)
    return units


def coverage(tokenizer, lines, max_lines: int = 2000) -> dict:
    """Unknown-token share and sub-words per unit of the language's dominant script ("unit": a word, or a
    character in a space-less script) on the first max_lines lines; the scripts' shares of its letters."""
    words = characters = tokens = unknown = 0
    scripts = Counter()
    for line in itertools.islice(lines, max_lines):
        ids = tokenizer(line, add_special_tokens=False)["input_ids"]
        words += len(line.split())
        characters += character_units(line)
        tokens += len(ids)
        unknown += sum(i == tokenizer.unk_token_id for i in ids)
        scripts.update(filter(None, map(script_of, line)))
    script = scripts.most_common(1)[0][0] if scripts else None
    unit, units = ("character", characters) if script in SPACELESS else ("word", words)
    letters = sum(scripts.values())
    return {
        "unk_rate": unknown / max(tokens, 1),
        "subwords_per_word": tokens / max(units, 1),  # per word, or per character where "unit" says so
        "unit": unit,
        "sample_words": units,  # the units counted: words, or characters
        "script": script,
        "scripts": {name: round(n / letters, 3) for name, n in scripts.most_common() if n >= 0.01 * letters},
    }


def _unit(stats: dict) -> str:
    return stats.get("unit", "word")  # a record written before units were measured counted words


def comparable(stats: dict, source: dict) -> bool:
    """Whether two languages' sub-words per unit compare: words with words (spaces separate words alike in every
    script that has them); characters only within one script (a Han character carries more than a Thai one)."""
    if _unit(stats) != _unit(source):
        return False
    return _unit(stats) == "word" or stats.get("script") == source.get("script")


def fertility_reason(stats: dict, source: dict | None = None) -> str | None:
    """Why the language's sub-words per unit say the base tokenizer cannot read it, if they do: more than
    CHARACTER_SPLIT per character of a space-less script, or FAR_ABOVE times the source's in a comparable unit."""
    value, unit = stats["subwords_per_word"], _unit(stats)
    if unit == "character" and value > CHARACTER_SPLIT:
        return (f"{value:.2f} sub-words per character (a vocabulary that has the script's characters needs at most "
                "1: it splits them into bytes)")
    if source and comparable(stats, source) and value > FAR_ABOVE * source["subwords_per_word"]:
        return f"{value:.2f} sub-words per {unit} (source: {source['subwords_per_word']:.2f})"
    return None


def new_script_reasons(stats: dict, source: dict | None = None, base_scripts=None) -> list[str]:
    """Why a language needs a new-script setup (madx_translit, madx_emb), if it does: an unknown-token rate far
    above the source's, sub-words per unit that say the tokenizer breaks the language up (fertility_reason), or a
    script none of the base model's training languages has (`base_scripts`, when that is known, as for the demo's
    base model)."""
    reasons = []
    source_unk = source["unk_rate"] if source else 0.0
    if stats["unk_rate"] > max(UNK_WARNING, 2 * source_unk):
        reasons.append(f"{100 * stats['unk_rate']:.1f}% unknown tokens" + (
            f" (source: {100 * source_unk:.1f}%)" if source else ""))
    fertility = fertility_reason(stats, source)
    if fertility:
        reasons.append(fertility)
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
