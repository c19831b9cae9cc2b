"""The offline demo's synthetic multilingual NER benchmark, deterministic from a seed.

One shared grammar; a source language (`en`, English words) and target languages that replace
every word with a pseudo-word from their own seeded lexicon. Some targets put the verb last
(SOV); one writes in Cyrillic, its entity names transliterated. Entity names are shared across
languages, and the entity pools of training and test are disjoint, so NER has to use context.
Output: unlabelled corpora for every language and CoNLL NER files, read by madx's real readers.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from pathlib import Path

# Function and content words of the shared grammar, by part of speech.
WORDS = {
    "det": ["the", "a", "every", "this"],
    "adj": ["old", "young", "small", "large", "quiet", "famous", "busy", "new"],
    "noun": ["farmer", "teacher", "doctor", "child", "friend", "merchant", "soldier", "singer", "letter", "horse",
             "book", "gift"],
    "verb": ["visited", "met", "called", "helped", "praised", "followed", "watched", "thanked"],
    "move": ["travelled", "returned", "walked", "moved"],
    "prep": ["in", "near", "from", "to"],
    "work": ["works for", "writes for", "joined", "left"],
    "time": ["yesterday", "today", "in spring", "last week", "at night", "in winter"],
    "say": ["said", "wrote", "told"],
    "that": ["that"],
    "and": ["and"],
    "with": ["with"],
}
# Entity names are made from their own syllables (capitalised), many of them, so a model cannot
# memorise them all: it has to learn what the context says. The same names serve every language.
NAME_ONSETS = "b br d f g k kr l m n p r s st t v z".split()
NAME_VOWELS = "a e i o u ei".split()
NAME_CODAS = ["", "", "n", "r", "l", "s", "k"]
ORG_SUFFIXES = [(), (), ("Group",), ("Labs",), ("Bank",), ("Media",), ("Motors",)]


def _names(kind: str, count: int, syllables: tuple) -> list[str]:
    rng = random.Random(f"names:{kind}")
    names = set()
    while len(names) < count:
        n = rng.choice(syllables)
        word = "".join(rng.choice(NAME_ONSETS) + rng.choice(NAME_VOWELS) + rng.choice(NAME_CODAS) for _ in range(n))
        names.add(word.capitalize())
    return sorted(names)


FIRST_NAMES = _names("first", 60, (2,))
LAST_NAMES = _names("last", 60, (2, 3))
PLACES = _names("place", 160, (2, 3))
ORGS = [(name, *suffix) for name, suffix in zip(_names("org", 120, (1, 2)),
                                                  itertools.cycle(ORG_SUFFIXES))]

# Templates: (constituents, with "V" the verb slot that SOV languages move to the end of the clause)
TEMPLATES = [
    ["PER", "V:verb", "NP"],
    ["NP", "V:verb", "PER", "time"],
    ["PER", "V:move", "prep", "LOC", "time"],
    ["PER", "V:work", "ORG"],
    ["NP", "prep", "LOC", "V:verb", "PER"],
    ["PER", "and", "PER", "V:move", "prep", "LOC"],
    ["ORG", "V:verb", "NP", "prep", "LOC"],
    ["PER", "V:say", "that", "ORG", "V:verb", "PER"],
    ["time", "PER", "V:verb", "NP", "with", "PER"],
]
SYLLABLE_ONSETS = "b d f g k l m n p r s t v z".split()
VOWELS = "a e i o u".split()
CYRILLIC = {"a": "а", "b": "б", "c": "ц", "d": "д", "e": "е", "f": "ф", "g": "г", "h": "х", "i": "и", "j": "й",
            "k": "к", "l": "л", "m": "м", "n": "н", "o": "о", "p": "п", "q": "к", "r": "р", "s": "с", "t": "т",
            "u": "у", "v": "в", "w": "в", "x": "кс", "y": "ы", "z": "з"}


@dataclass(frozen=True)
class DemoLanguage:
    code: str
    word_order: str  # "SVO" or "SOV"
    script: str  # "latin" or "cyrillic"
    in_base: bool  # seen by the demo base model's pretraining


LANGUAGES = (
    DemoLanguage("en", "SVO", "latin", True),
    DemoLanguage("qaa", "SVO", "latin", True),
    DemoLanguage("qab", "SOV", "latin", True),
    DemoLanguage("qac", "SVO", "latin", False),
    DemoLanguage("qad", "SOV", "cyrillic", False),
)


def transliterate(text: str) -> str:
    out = []
    for ch in text:
        low = ch.lower()
        cyr = CYRILLIC.get(low, ch)
        out.append(cyr.upper() if ch.isupper() else cyr)
    return "".join(out)


def _lexicon(code: str, seed: int) -> dict:
    """English word -> pseudo-word, a bijection per language."""
    if code == "en":
        return {}
    rng = random.Random(f"{seed}:{code}")
    vocab = sorted({w for words in WORDS.values() for phrase in words for w in phrase.split()})
    lexicon, used = {}, set()
    for word in vocab:
        while True:
            n = rng.choice((1, 2, 2, 3))
            pseudo = "".join(rng.choice(SYLLABLE_ONSETS) + rng.choice(VOWELS) for _ in range(n))
            if pseudo not in used:
                break
        used.add(pseudo)
        lexicon[word] = pseudo
    return lexicon


class Generator:
    def __init__(self, language: DemoLanguage, seed: int):
        self.language = language
        self.lexicon = _lexicon(language.code, seed)

    def _word(self, word: str) -> str:
        text = " ".join(self.lexicon.get(w, w) for w in word.split())
        return transliterate(text) if self.language.script == "cyrillic" else text

    def _entity(self, tokens: tuple) -> list[str]:
        return [transliterate(t) if self.language.script == "cyrillic" else t for t in tokens]

    def sentence(self, rng: random.Random, entities: dict) -> tuple[list[str], list[str]]:
        """One sentence as (tokens, BIO tags)."""
        clauses, current = [], []
        for slot in rng.choice(TEMPLATES):
            if slot == "that":  # a subordinate clause starts: SOV moves verbs within each clause
                clauses.append(current)
                current = []
            current.append(slot)
        clauses.append(current)
        tokens, tags = [], []
        for clause in clauses:
            if self.language.word_order == "SOV":
                verbs = [s for s in clause if s.startswith("V:")]
                clause = [s for s in clause if not s.startswith("V:")] + verbs
                if clause[0] == "that":
                    clause = clause[1:] + ["that"]
            for slot in clause:
                self._emit(slot.removeprefix("V:"), rng, entities, tokens, tags)
        return tokens, tags

    def _emit(self, slot, rng, entities, tokens, tags):
        if slot in ("PER", "LOC", "ORG"):
            names = self._entity(rng.choice(entities[slot]))
            tokens += names
            tags += [f"B-{slot}"] + [f"I-{slot}"] * (len(names) - 1)
        elif slot == "NP":
            words = [rng.choice(WORDS["det"])] + ([rng.choice(WORDS["adj"])] if rng.random() < 0.5 else [])
            words.append(rng.choice(WORDS["noun"]))
            for w in words:
                self._emit_words(w, tokens, tags)
        else:
            self._emit_words(rng.choice(WORDS[slot]), tokens, tags)

    def _emit_words(self, phrase, tokens, tags):
        for w in self._word(phrase).split():
            tokens.append(w)
            tags.append("O")


def entity_pools(split: str) -> dict:
    """Disjoint entity pools: 'train' for unlabelled text and NER train/dev, 'test' for the test sets."""
    people = [(f, l) for f in FIRST_NAMES for l in LAST_NAMES]
    random.Random(7).shuffle(people)
    people = people[:2000]
    half = {"PER": len(people) // 2, "LOC": len(PLACES) // 2, "ORG": len(ORGS) // 2}
    pools = {"PER": people, "LOC": [(p,) for p in PLACES], "ORG": ORGS}
    if split == "train":
        return {k: v[: half[k]] for k, v in pools.items()}
    return {k: v[half[k]:] for k, v in pools.items()}


def write_conll(path: Path, sentences) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for tokens, tags in sentences:
            f.writelines(f"{t}\t{g}\n" for t, g in zip(tokens, tags))
            f.write("\n")


def describe(languages=LANGUAGES) -> str:
    """The demo's languages, for the report."""
    lines = ["## The demo languages", "",
             "Synthetic languages from one grammar (madx/demo.py); entity names are shared, and the test "
             "sets use names never seen in training.", "",
             "| language | word order | script | seen by the base model |", "|---|---|---|---|"]
    for lang in languages:
        lines.append(f"| {lang.code} | {lang.word_order} | {lang.script} | "
                     f"{'yes' if lang.in_base else '**no**'} |")
    lines += ["", "A Cyrillic language unseen by the base model is a new *script* for it: its pieces are in the "
              "tokenizer's vocabulary (which saw every corpus), so none are unknown, but their embeddings were "
              "never trained. Adapters on a frozen base cannot repair that (MAD-X's known limit; Pfeiffer et al. "
              "2021, \"UNKs Everywhere\", learn new embeddings for it), so every setup fails there; the Latin-script "
              "unseen language shows what a language adapter does."]
    return "\n".join(lines) + "\n"


def generate(out_dir: str | Path, *, seed: int = 0, corpus_sentences: int = 20000, train_sentences: int = 3000,
             dev_sentences: int = 500, test_sentences: int = 800, languages=LANGUAGES) -> dict:
    """Write corpora/{lang}.txt, ner/{en}.train.conll, ner/en.dev.conll, ner/{lang}.test.conll."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "README.md").write_text(describe(languages))
    written = {}
    for language in languages:
        gen = Generator(language, seed)
        rng = random.Random(f"{seed}:{language.code}:corpus")
        corpus = [" ".join(gen.sentence(rng, entity_pools("train"))[0]) for _ in range(corpus_sentences)]
        path = out_dir / "corpora" / f"{language.code}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(corpus) + "\n", encoding="utf-8")
        written[f"corpus/{language.code}"] = path
        rng = random.Random(f"{seed}:{language.code}:test")
        test = [gen.sentence(rng, entity_pools("test")) for _ in range(test_sentences)]
        write_conll(out_dir / "ner" / f"{language.code}.test.conll", test)
        if language.code == languages[0].code:  # the source language has labelled training data
            rng = random.Random(f"{seed}:{language.code}:train")
            write_conll(out_dir / "ner" / f"{language.code}.train.conll",
                        [gen.sentence(rng, entity_pools("train")) for _ in range(train_sentences)])
            write_conll(out_dir / "ner" / f"{language.code}.dev.conll",
                        [gen.sentence(rng, entity_pools("train")) for _ in range(dev_sentences)])
    return written
