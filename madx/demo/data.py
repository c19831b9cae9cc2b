"""The offline demo's synthetic multilingual NER benchmark, deterministic from a seed.

One shared grammar; a source language (`en`, English words) and target languages that replace
every word with a pseudo-word from their own seeded lexicon. Some targets put the verb last
(SOV); one writes in Cyrillic, its entity names transliterated. Entity names are shared across
languages, and the entity pools of training and test are disjoint, so NER has to use context.
Output: unlabelled corpora for every language, CoNLL NER files, and JSONL files of the other task families
(classification, multiple choice, QA: `family_records`) from the same grammar and names, each balanced over the
kinds of name it asks about, read by madx's real readers.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, fields
from pathlib import Path

from ..core.errors import InputError
from ..core.files import write_text
from ..core.settings import option
from ..data.romanize import CYRILLIC
from ..tasks.families import TASK_TYPES, family

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
SYLLABLE_ONSETS = "b d f g k l m n p r s t v z".split()
VOWELS = "a e i o u".split()


WORD_ORDERS = ("SVO", "SOV")
SCRIPTS = ("latin", "cyrillic")


@dataclass(frozen=True)
class DemoLanguage:
    """One synthetic language: a line of the config's `demo.languages` (`qae: {word_order: SOV, seen: true}`)."""

    code: str
    word_order: str = option("SVO", "SOV puts the verb last in each clause", choices=WORD_ORDERS)
    script: str = option("latin", "cyrillic transliterates every word letter by letter", choices=SCRIPTS)
    seen: bool = option(False, "the base model is pretrained on its corpus")
    tokenizer: bool | None = option(None, "the base model's tokenizer is trained on its corpus (default: seen)")

    def __post_init__(self):
        if self.word_order not in WORD_ORDERS:
            raise ValueError(f"{self.code}: word_order={self.word_order!r}; use one of {WORD_ORDERS}")
        if self.script not in SCRIPTS:
            raise ValueError(f"{self.code}: script={self.script!r}; use one of {SCRIPTS}")
        if self.tokenizer is None:
            object.__setattr__(self, "tokenizer", self.seen)


@dataclass(frozen=True)
class DemoData:
    """How much of the benchmark to write: the config's `demo` size keys and `madx demo-data`'s options."""

    seed: int = option(0, "seed of the lexicons and sentences")
    corpus_sentences: int = option(20000, "unlabelled sentences per language")
    train_sentences: int = option(3000, "labelled training sentences per language")
    dev_sentences: int = option(500, "labelled dev sentences per language")
    test_sentences: int = option(800, "labelled test sentences per language")

    def __post_init__(self):
        for f in fields(self):
            if f.name != "seed" and getattr(self, f.name) < 10:
                raise InputError(f"{f.name}={getattr(self, f.name)} must be at least 10")


@dataclass(frozen=True)
class TinyEncoder:
    """The demo base model's tokenizer and encoder: `madx build-base` and the config's `demo` shape keys."""

    vocab_size: int = option(1000, "sentencepiece pieces at most (fewer when the corpora have fewer word types)")
    hidden_size: int = option(128, "hidden size of the encoder")
    num_hidden_layers: int = option(4, "transformer layers")
    num_attention_heads: int = option(4, "attention heads")
    intermediate_size: int = option(512, "FFN width")
    max_seq_len: int = option(64, "longest input in tokens (the position table)")
    dropout: float = option(0.1, "hidden and attention dropout of the encoder")
    line_by_line: bool = option(True, "pretrain on single sentences (as the task sees them), not concatenated blocks")


SPLITS = ("train", "dev", "test")


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

    def entity(self, tokens: tuple) -> list[str]:
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
            names = self.entity(rng.choice(entities[slot]))
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

    def __init__(self, gen: "Generator", entities: dict):
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


def family_records(gen: "Generator", kind: str, count: int, entities: dict, seed: str) -> list:
    """`count` records of the demo task of task type `kind` (its family's demo_records: the layouts madx reads,
    madx/data/texts.py; each kind of name asked about equally often), deterministic from `seed`."""
    if kind not in DEMO_TASKS:
        raise ValueError(f"task family {kind!r}; the demo makes {', '.join(DEMO_TASKS)}")
    return family(kind).demo_records(DemoSentences(gen, entities), count, seed)


def describe(languages) -> str:
    """The demo's languages, for the report."""
    lines = ["## The demo languages", "",
             "Synthetic languages from one grammar (madx/demo/data.py); entity names are shared, and the test "
             "sets use names never seen in training.", "",
             "| language | word order | script | seen by the base model |", "|---|---|---|---|"]
    for lang in languages:
        lines.append(f"| {lang.code} | {lang.word_order} | {lang.script} | "
                     f"{'yes' if lang.seen else '**no**'} |")
    lines += ["", "A Cyrillic language unseen by the base model is a new *script* for it: its pieces are in the "
              "tokenizer's vocabulary (which saw its corpus), so none are unknown, but their embeddings were "
              "never trained. Adapters on a frozen base cannot repair that (MAD-X's known limit; Pfeiffer et al. "
              "2021, \"UNKs Everywhere\", learn new embeddings for it), so every setup fails there; an unseen "
              "Latin-script language shows what a language adapter does.", "",
              "The same grammar makes one task of each other family (JSONL beside the NER files), each kind of name "
              "asked about equally often: classification (is the sentence's first name a person, a place or a "
              "company), multiple choice (which of two names fills the gap `___`) and extractive QA (who / where / "
              "which company, in a sentence naming another kind too, answered by the name's span)."]
    return "\n".join(lines) + "\n"


def corpus_path(out_dir: Path, code: str) -> Path:
    return Path(out_dir) / "corpora" / f"{code}.txt"


DEMO_TASKS = tuple(t for t in TASK_TYPES if family(t).makes_demo)  # the task types the demo writes data for


def task_path(out_dir: Path, code: str, split: str, kind: str = DEMO_TASKS[0]) -> Path:
    """{kind}/{code}.{split} and the family's demo suffix: ner/{code}.{split}.conll, qa/{code}.{split}.jsonl."""
    return Path(out_dir) / kind / f"{code}.{split}{family(kind).demo_suffix}"


def generate_language(out_dir: str | Path, language: DemoLanguage, data: DemoData = DemoData()) -> list[Path]:
    """One language's files, each written whole or not at all: corpora/{code}.txt (unlabelled) and
    ner/{code}.{train,dev,test}.conll. They depend on the seed and this language alone, so adding a language
    leaves every other language's files as they were."""
    gen = Generator(language, data.seed)
    rng = random.Random(f"{data.seed}:{language.code}:corpus")
    corpus = [" ".join(gen.sentence(rng, entity_pools("train"))[0]) for _ in range(data.corpus_sentences)]
    written = [write_text(corpus_path(out_dir, language.code), "\n".join(corpus) + "\n")]
    sizes = {"train": data.train_sentences, "dev": data.dev_sentences, "test": data.test_sentences}
    for split in SPLITS:
        entities = entity_pools("test" if split == "test" else "train")
        for kind in DEMO_TASKS:
            records = family_records(gen, kind, sizes[split], entities, f"{data.seed}:{language.code}:{split}")
            write_text(task_path(out_dir, language.code, split, kind), family(kind).demo_text(records))
    return written + [task_path(out_dir, language.code, split, kind) for split in SPLITS for kind in DEMO_TASKS]


def generate(out_dir: str | Path, languages, data: DemoData = DemoData()) -> None:
    """Every language's files and README.md (the language table)."""
    for language in languages:
        generate_language(out_dir, language, data)
    write_text(Path(out_dir) / "README.md", describe(languages))
