"""The offline demo's synthetic multilingual benchmark on disk, deterministic from a seed.

One shared grammar (madx/demo/grammar.py); a source language (`en`, English words) and target languages that replace
every word with a pseudo-word from their own seeded lexicon. Some targets put the verb last
(SOV); one writes in Cyrillic, its entity names transliterated. Entity names are shared across
languages, and the entity pools of training and test are disjoint, so NER has to use context.
Output: unlabelled corpora for every language, CoNLL NER files, and JSONL files of the other task families
(classification, multiple choice, QA: `family_records`) from the same grammar and names, each balanced over the
kinds of name it asks about, read by madx's real readers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from pathlib import Path

from ..core.errors import InputError
from ..core.files import write_text
from ..core.settings import option
from ..tasks.families import TASK_TYPES, family
from .grammar import DemoSentences, Generator, entity_pools

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
    variety_of: str = option("", "a variety of this demo language: it keeps `shared` of its words, the rest its own")
    shared: float = option(0.7, "variety_of: the share of that language's words it keeps")

    def __post_init__(self):
        if not 0 < self.shared <= 1:
            raise ValueError(f"{self.code}: shared={self.shared} must be in (0, 1]")
        if self.variety_of == self.code:
            raise ValueError(f"{self.code}: variety_of={self.code!r} names the language itself")
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


def family_records(gen: Generator, kind: str, count: int, entities: dict, seed: str) -> list:
    """`count` records of the demo task of task type `kind` (its family's demo_records: the layouts madx reads,
    its family's reader in madx/tasks/; each kind of name asked about equally often), deterministic from `seed`."""
    if kind not in DEMO_TASKS:
        raise ValueError(f"task family {kind!r}; the demo makes {', '.join(DEMO_TASKS)}")
    return family(kind).demo_records(DemoSentences(gen, entities), count, seed)


def describe(languages) -> str:
    """The demo's languages, for the report."""
    lines = ["## The demo languages", "",
             "Synthetic languages from one grammar (madx/demo/grammar.py); entity names are shared, and the test "
             "sets use names never seen in training.", "",
             "| language | word order | script | seen by the base model | words |", "|---|---|---|---|---|"]
    for lang in languages:
        words = f"{lang.shared:.0%} of {lang.variety_of}'s, the rest its own" if lang.variety_of else "its own"
        lines.append(f"| {lang.code} | {lang.word_order} | {lang.script} | "
                     f"{'yes' if lang.seen else '**no**'} | {words} |")
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


def treebank_path(out_dir: Path, code: str, split: str) -> Path:
    """dependency/{code}.{split}.conllu: the demo sentences' dependency trees (a syntax K-adapter's knowledge)."""
    return Path(out_dir) / "dependency" / f"{code}.{split}.conllu"


def treebank_text(gen: Generator, count: int, entities: dict, seed: str) -> str:
    """`count` sentences of the grammar with their trees (Generator.parsed), as CoNLL-U."""
    rng, sentences = random.Random(seed), []
    for number in range(1, count + 1):
        tokens, _, heads, relations = gen.parsed(rng, entities)
        rows = [f"{i}\t{token}\t_\t_\t_\t_\t{head}\t{relation}\t_\t_"
                for i, (token, head, relation) in enumerate(zip(tokens, heads, relations), 1)]
        sentences.append(f"# sent_id = {number}\n" + "\n".join(rows) + "\n")
    return "\n".join(sentences) + "\n"


def generate_language(out_dir: str | Path, language: DemoLanguage, data: DemoData = DemoData()) -> list[Path]:
    """One language's files, each written whole or not at all: corpora/{code}.txt (unlabelled), each family's task
    files (ner/{code}.{train,dev,test}.conll, ...) and the dependency trees (dependency/{code}.{split}.conllu). They depend on the seed and this language alone, so adding a language
    leaves every other language's files as they were."""
    gen = Generator(language, data.seed)
    rng = random.Random(f"{data.seed}:{language.code}:corpus")
    entities = entity_pools("train")
    corpus = [" ".join(gen.sentence(rng, entities)[0]) for _ in range(data.corpus_sentences)]
    written = [write_text(corpus_path(out_dir, language.code), "\n".join(corpus) + "\n")]
    sizes = {"train": data.train_sentences, "dev": data.dev_sentences, "test": data.test_sentences}
    for split in SPLITS:
        entities = entity_pools("test" if split == "test" else "train")
        for kind in DEMO_TASKS:
            records = family_records(gen, kind, sizes[split], entities, f"{data.seed}:{language.code}:{split}")
            write_text(task_path(out_dir, language.code, split, kind), family(kind).demo_text(records))
        write_text(treebank_path(out_dir, language.code, split),
                   treebank_text(gen, sizes[split], entities, f"{data.seed}:{language.code}:{split}:dependency"))
    return written + [task_path(out_dir, language.code, split, kind) for split in SPLITS for kind in DEMO_TASKS] + [
        treebank_path(out_dir, language.code, split) for split in SPLITS]


def generate(out_dir: str | Path, languages, data: DemoData = DemoData()) -> None:
    """Every language's files and README.md (the language table)."""
    for language in languages:
        generate_language(out_dir, language, data)
    write_text(Path(out_dir) / "README.md", describe(languages))
