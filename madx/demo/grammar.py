"""The offline demo's grammar: its words, entity names and sentence templates, each language's seeded lexicon
of pseudo-words (a bijection on the English words), Cyrillic transliteration, and the sentences a task is made
from (Generator: tokens with BIO tags; DemoSentences: sentences asking about each kind of name in turn).
What is written to disk, and how much: madx/demo/data.py."""

from __future__ import annotations

import functools
import itertools
import random
from dataclasses import dataclass

from ..data.romanize import CYRILLIC

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
# Places and companies: enough that the task adapter cannot learn them by heart (with 80 places to learn, NER
# found 2% of the test set's new ones), so it has to read their kind from the words around them.
PLACES = _names("place", 1000, (2, 3))
ORGS = [(name, *suffix) for name, suffix in zip([n for n in _names("org", 1100, (1, 2)) if n not in set(PLACES)],
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
# Each template's dependency tree over its slots (UD relations): for each slot, the slot it depends on (None: the
# root) and its relation. The demo's syntax K-adapter learns them (madx/demo/data.py writes them as CoNLL-U).
TREES = [
    [(1, "nsubj"), (None, "root"), (1, "obj")],
    [(1, "nsubj"), (None, "root"), (1, "obj"), (1, "obl:tmod")],
    [(1, "nsubj"), (None, "root"), (3, "case"), (1, "obl"), (1, "obl:tmod")],
    [(1, "nsubj"), (None, "root"), (1, "obj")],
    [(3, "nsubj"), (2, "case"), (0, "nmod"), (None, "root"), (3, "obj")],
    [(3, "nsubj"), (2, "cc"), (0, "conj"), (None, "root"), (5, "case"), (3, "obl")],
    [(1, "nsubj"), (None, "root"), (1, "obj"), (4, "case"), (1, "obl")],
    [(1, "nsubj"), (None, "root"), (4, "mark"), (4, "nsubj"), (1, "ccomp"), (4, "obj")],
    [(2, "obl:tmod"), (2, "nsubj"), (None, "root"), (2, "obj"), (5, "case"), (2, "obl")],
]
SYLLABLE_ONSETS = "b d f g k l m n p r s t v z".split()
VOWELS = "a e i o u".split()


def transliterate(text: str) -> str:
    out = []
    for ch in text:
        low = ch.lower()
        cyr = CYRILLIC.get(low, ch)
        out.append(cyr.upper() if ch.isupper() else cyr)
    return "".join(out)


def _lexicon(code: str, seed: int, variety_of: str = "", shared: float = 1.0) -> dict:
    """English word -> pseudo-word, a bijection per language. A variety of another language keeps that language's
    word for a `shared` share of the words (drawn per word) and has its own for the rest."""
    if code == "en":
        return {}
    parent = _lexicon(variety_of, seed) if variety_of else {}
    rng = random.Random(f"{seed}:{code}")
    keep = random.Random(f"{seed}:{code}:variety")
    vocab = sorted({w for words in WORDS.values() for phrase in words for w in phrase.split()})
    lexicon, used = {}, set(parent.values()) | (set(vocab) if variety_of == "en" else set())
    for word in vocab:
        if variety_of and keep.random() < shared:
            lexicon[word] = parent.get(word, word)  # en's words are themselves
            continue
        while True:
            n = rng.choice((1, 2, 2, 3))
            pseudo = "".join(rng.choice(SYLLABLE_ONSETS) + rng.choice(VOWELS) for _ in range(n))
            if pseudo not in used:
                break
        used.add(pseudo)
        lexicon[word] = pseudo
    return lexicon


class Generator:
    """One language's sentences: the grammar's templates in its word order, its lexicon's words, its script."""

    def __init__(self, language, seed: int):
        self.language = language
        self.lexicon = _lexicon(language.code, seed, language.variety_of, language.shared)

    def _word(self, word: str) -> str:
        text = " ".join(self.lexicon.get(w, w) for w in word.split())
        return transliterate(text) if self.language.script == "cyrillic" else text

    def entity(self, tokens: tuple) -> list[str]:
        return [transliterate(t) if self.language.script == "cyrillic" else t for t in tokens]

    def sentence(self, rng: random.Random, entities: dict) -> tuple[list[str], list[str]]:
        """One sentence as (tokens, BIO tags)."""
        tokens, tags, _, _ = self.parsed(rng, entities)
        return tokens, tags

    def parsed(self, rng: random.Random, entities: dict) -> tuple[list[str], list[str], list[int], list[str]]:
        """One sentence as (tokens, BIO tags, each token's head (1-based, 0 the root), its relation): the
        template's tree (TREES) over its slots, each slot's words attached to the slot's own head word."""
        template = rng.choice(TEMPLATES)
        tree = TREES[TEMPLATES.index(template)]
        clauses, current = [], []
        for index, slot in enumerate(template):
            if slot == "that":  # a subordinate clause starts: SOV moves verbs within each clause
                clauses.append(current)
                current = []
            current.append(index)
        clauses.append(current)
        tokens, tags, words_of, head_of = [], [], {}, {}  # slot index -> its tokens' positions, its head's position
        inner = {}  # token position -> (head position, relation) inside its slot
        for clause in clauses:
            if self.language.word_order == "SOV":
                verbs = [i for i in clause if template[i].startswith("V:")]
                clause = [i for i in clause if not template[i].startswith("V:")] + verbs
                if template[clause[0]] == "that":
                    clause = clause[1:] + [clause[0]]
            for index in clause:
                start = len(tokens)
                structure = self._emit(template[index].removeprefix("V:"), rng, entities, tokens, tags)
                head, relations = structure(len(tokens) - start)
                words_of[index], head_of[index] = range(start, len(tokens)), start + head
                for offset, relation in relations.items():
                    inner[start + offset] = (start + head, relation)
        heads, relations = [0] * len(tokens), [""] * len(tokens)
        for index, (parent, relation) in enumerate(tree):
            for position in words_of[index]:
                if position in inner:
                    heads[position], relations[position] = inner[position][0] + 1, inner[position][1]
                elif position == head_of[index]:
                    heads[position] = 0 if parent is None else head_of[parent] + 1
                    relations[position] = relation
        return tokens, tags, heads, relations

    def _emit(self, slot, rng, entities, tokens, tags):
        """Append one slot's words; returns its structure: n words -> (the head's offset, {offset: relation})."""
        if slot in ("PER", "LOC", "ORG"):
            names = self.entity(rng.choice(entities[slot]))
            tokens += names
            tags += [f"B-{slot}"] + [f"I-{slot}"] * (len(names) - 1)
            return lambda n: (0, {i: "flat" for i in range(1, n)})  # a name: its first word heads the rest
        if slot == "NP":
            words = [rng.choice(WORDS["det"])] + ([rng.choice(WORDS["adj"])] if rng.random() < 0.5 else [])
            words.append(rng.choice(WORDS["noun"]))
            for w in words:
                self._emit_words(w, tokens, tags)
            return lambda n: (n - 1, {0: "det", **({1: "amod"} if n == 3 else {})})
        phrase = rng.choice(WORDS[slot])
        self._emit_words(phrase, tokens, tags)
        if slot == "time":  # in spring, last week: the noun heads, after a preposition (case) or an adjective
            first = phrase.split()[0]
            return lambda n: (n - 1, {0: "case" if first in ("in", "at") else "amod"} if n > 1 else {})
        return lambda n: (0, {i: "compound:prt" for i in range(1, n)})  # works for: the verb heads its particle

    def _emit_words(self, phrase, tokens, tags):
        for w in self._word(phrase).split():
            tokens.append(w)
            tags.append("O")


@functools.cache
def entity_pools(split: str) -> dict:
    """Disjoint entity pools: 'train' for unlabelled text and NER train/dev, 'test' for the test sets. Computed once
    (a shuffle of every name pair) and shared: callers only read them."""
    people = [(f, l) for f in FIRST_NAMES for l in LAST_NAMES]
    random.Random(7).shuffle(people)
    people = people[:2000]
    half = {"PER": len(people) // 2, "LOC": len(PLACES) // 2, "ORG": len(ORGS) // 2}
    pools = {"PER": people, "LOC": [(p,) for p in PLACES], "ORG": ORGS}
    if split == "train":
        return {k: v[: half[k]] for k, v in pools.items()}
    return {k: v[half[k]:] for k, v in pools.items()}


# The demo's other tasks ask about the names of the NER grammar's sentences, each kind equally often (DemoSentences;
# what each task asks: its family's demo_records, madx/tasks/).
ENTITY_KINDS = {"PER": "person", "LOC": "place", "ORG": "company"}
QUESTIONS = {"PER": "who", "LOC": "where", "ORG": "which company"}
GAP = "___"


def entity_spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """(type, first token, one past the last token) of each entity in BIO tags."""
    spans = []
    for i, tag in enumerate(tags):
        if tag.startswith("B-"):
            spans.append([tag[2:], i, i + 1])
        elif tag.startswith("I-") and spans and spans[-1][2] == i:
            spans[-1][2] = i + 1
    return [tuple(s) for s in spans]


@dataclass(frozen=True)
class Asked:
    """A demo sentence and the name a task asks about in it, tokens[start:end]: of `kind` (PER), a `kind_name`
    (person) asked about by `question` (who)."""

    tokens: list
    start: int
    end: int
    kind: str
    kind_name: str
    question: str

    @property
    def name(self) -> list[str]:
        return self.tokens[self.start : self.end]


class DemoSentences:
    """What a family makes its demo task from (Family.demo_records): one language's sentences over one split's
    names, and sentences asking about each kind of name in turn."""

    kinds = tuple(ENTITY_KINDS)
    gap = GAP

    def __init__(self, gen: Generator, entities: dict):
        self.gen, self.entities = gen, entities

    def tagged(self, rng: random.Random) -> tuple[list[str], list[str]]:
        """A sentence as (tokens, BIO tags)."""
        return self.gen.sentence(rng, self.entities)

    def asking(self, rng: random.Random, i: int, *, first: bool) -> Asked:
        """A sentence about the i-th kind of name in turn (each kind equally often): one whose first name is of that
        kind (first=True), or one naming exactly one of that kind beside a name of another kind (first=False)."""
        kind = self.kinds[i % len(self.kinds)]
        while True:
            tokens, tags = self.gen.sentence(rng, self.entities)
            spans = entity_spans(tags)
            asked = [span for span in spans if span[0] == kind]
            if first and spans and spans[0][0] == kind or not first and len(asked) == 1 and len(spans) > 1:
                _, start, end = spans[0] if first else asked[0]
                return Asked(tokens, start, end, kind, ENTITY_KINDS[kind], QUESTIONS[kind])

    def other_name(self, rng: random.Random, kind: str) -> list[str]:
        """A name of a kind other than `kind`, as this language writes it."""
        other = rng.choice([k for k in self.kinds if k != kind])
        return self.gen.entity(rng.choice(self.entities[other]))
