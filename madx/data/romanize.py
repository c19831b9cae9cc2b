"""Romanization: one function for a language's corpus and its task data (the `madx_translit` setup).

A base model that never saw a language's script reads its romanized form through the Latin pieces it knows
(Muller et al., NAACL 2021, "When Being Unseen from mBERT is just the Beginning": romanizing Uyghur and Sorani
turned near-failure into usable transfer). Text is romanized word by word (each run of non-space characters
alone, whitespace kept), so a sentence keeps its words and a token-level task its labels, and the corpus and
the test data go through exactly the same mapping.

Romanizers: `demo` (built in: the inverse of the offline demo's Cyrillic table, madx/demo/grammar.py), `anyascii` and
`uroman` (PyPI packages of those names; `pip install 'madx[translit]'`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Callable

from ..core.errors import MadxError
from ..core.settings import ROMANIZERS

PIP_PACKAGE = {"anyascii": "anyascii", "uroman": "uroman"}
_SPACE = re.compile(r"(\s+)")
# the offline demo's Latin -> Cyrillic spelling (madx/demo/grammar.py spells qad with it; `demo` romanizes it back)
CYRILLIC = {"a": "а", "b": "б", "c": "ц", "d": "д", "e": "е", "f": "ф", "g": "г", "h": "х", "i": "и", "j": "й",
            "k": "к", "l": "л", "m": "м", "n": "н", "o": "о", "p": "п", "q": "к", "r": "р", "s": "с", "t": "т",
            "u": "у", "v": "в", "w": "в", "x": "кс", "y": "ы", "z": "з"}


class RomanizerError(MadxError, ValueError):
    pass


def demo_table() -> dict[str, str]:
    """Cyrillic letter -> Latin: the inverse of CYRILLIC. Where two Latin letters share a Cyrillic one
    (k and q -> к, v and w -> в) the first in the alphabet is taken: that is where the demo's romanization loses."""
    table = {}
    for latin, cyrillic in sorted(CYRILLIC.items()):
        if len(cyrillic) == 1:
            table.setdefault(cyrillic, latin)
    return table


@dataclass(frozen=True)
class Romanizer:
    """A named romanizer: `word(str) -> str` maps one word; `identity` names it with its version (cache keys and
    evaluation fingerprints change when the mapping can)."""

    name: str
    word: Callable[[str], str]
    identity: str

    def text(self, text: str) -> str:
        """The text romanized word by word; whitespace kept as it is."""
        return "".join(part if not part or part.isspace() else self.word(part) for part in _SPACE.split(text))

    def words(self, words: list[str]) -> list[str]:
        """Each word romanized; a word that romanizes to nothing keeps its original form (the word count and a
        token task's labels stay aligned)."""
        out = []
        for word in words:
            roman = self.text(word).strip()
            out.append(roman if roman else word)
        return out

    def spans(self, text: str, cuts: list[int]) -> tuple[str, dict[int, int]]:
        """(romanized text, old offset -> new offset for each cut): the text romanized piece by piece between the
        cuts (e.g. an answer's start and end), so a span of the original is a span of the romanized text."""
        bounds = sorted({0, len(text), *(c for c in cuts if 0 <= c <= len(text))})
        pieces, where = [], {0: 0}
        for start, end in zip(bounds, bounds[1:]):
            pieces.append(self.text(text[start:end]))
            where[end] = where[start] + len(pieces[-1])
        return "".join(pieces), where


def _with_case(table: dict[str, str]) -> Callable[[str], str]:
    def word(text: str) -> str:
        out = []
        for ch in text:
            low = ch.lower()
            latin = table.get(low)
            out.append(ch if latin is None else latin.upper() if ch != low else latin)
        return "".join(out)

    return word


def _package_version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def check_installed(name: str) -> None:
    """A clear error, naming the pip package, when romanizer `name` cannot be used here (cheap: nothing loaded)."""
    import importlib.util

    if name not in ROMANIZERS:
        raise RomanizerError(f"romanizer {name!r}; use one of {', '.join(ROMANIZERS)}")
    package = PIP_PACKAGE.get(name)
    if package and importlib.util.find_spec(package) is None:
        raise RomanizerError(f"romanizer {name!r} is not installed: pip install {package} "
                             "(or pip install 'madx[translit]')")


@functools.lru_cache(maxsize=None)
def romanizer(name: str, lang: str | None = None) -> Romanizer:
    """The romanizer called `name` (one of ROMANIZERS); `lang` is passed to uroman (ISO 639-3 codes only)."""
    if name == "demo":
        table = demo_table()
        identity = "demo:" + hashlib.sha256(json.dumps(sorted(table.items())).encode()).hexdigest()[:12]
        return Romanizer(name, _with_case(table), identity)
    check_installed(name)
    package = PIP_PACKAGE[name]
    module = __import__(package)
    identity = f"{name}:{_package_version(package)}"
    if name == "anyascii":
        return Romanizer(name, module.anyascii, identity)
    engine = module.Uroman()
    code = lang if lang and len(lang) == 3 else None
    return Romanizer(name, functools.lru_cache(maxsize=200_000)(lambda w: engine.romanize_string(w, lcode=code)),
                     identity + (f":{code}" if code else ""))
