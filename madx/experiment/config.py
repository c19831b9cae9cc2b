"""The config parsed once into frozen objects: its languages, tasks, sources, settings sections, compute and demo.
Every default the workflow applies is applied here (or is the default of the dataclass that owns it); the planner,
the checks and the .smk files read attributes, never the raw config."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from ..adapters.config import AdapterConfig
from ..adapters.kadapter import KAdapterConfig
from ..core.settings import (EMBEDDING_KEYS, NEW_EMBEDDINGS, EmeaSettings, KnowledgeTraining, LangTraining,
                             PretrainSettings, TaskTraining, TrainSettings)
from ..core.setups import DEFAULT_FUSION, DEFAULT_RELATED_K, DEFAULT_SETUPS, SETUPS, TRAININGS, URIEL
from ..core.sources import HUB_KEYS, DataError, Source, hub_spec
from ..demo.data import SPLITS, DemoData, DemoLanguage, TinyEncoder
from .checks import check_demo_shape, check_fusions, check_init_from, check_related, check_section, check_settings
from .layers import Layers
from .paths import Paths
from .schema import FULL_FT_SECTION, NAME, SECTIONS, ConfigError, check_names, check_schema


def frozen(section: Mapping | None = None) -> Mapping:
    """A config section (the keys the config sets) as a read-only mapping."""
    return MappingProxyType(dict(section or {}))


def given(section: Mapping, *keys: str) -> dict:
    """The keys of `section` the config sets, among `keys`: the rest keep their dataclass defaults."""
    return {key: section[key] for key in keys if key in section}


def source_spec(value) -> str:
    """A config data source (path string or {hub: ...} mapping) as a madx source string."""
    if isinstance(value, str):
        return value
    return hub_spec(value["hub"], {k: value[k] for k in HUB_KEYS if k in value})


@dataclass(frozen=True)
class Embeddings:
    """madx_emb: how a language's new input embeddings are made (languages.<lang>.embeddings)."""

    mode: str = NEW_EMBEDDINGS  # new: a tokenizer trained on the language's corpus
    vocab_size: int | None = None  # None: train-lang's own default
    lr: float | None = None  # None: train_lang's lr

    def train_lang_keys(self) -> dict:
        """The train-lang keys these embeddings set (the ones left unset keep train-lang's defaults)."""
        return {field: getattr(self, key) for key, field in EMBEDDING_KEYS.items() if getattr(self, key) is not None}


@dataclass(frozen=True)
class Language:
    """A language of the experiment: languages.<code>, or a demo language (its corpus the demo's unless given)."""

    code: str
    corpus: tuple[str, ...] = ()  # madx source specs; empty when a ready adapter is given
    adapter: str | None = None  # a ready language adapter directory: none is trained
    max_tokens: int | None = None  # cap on the corpus tokens used
    train_lang: Mapping = field(default_factory=frozen)  # its own train_lang keys, over the global ones
    setups: tuple[str, ...] = ()  # its new-script setups, beside the config's setups
    romanize: str | None = None  # the romanizer of madx_translit (and madx_emb's matching)
    embeddings: Embeddings = field(default_factory=Embeddings)
    sets_embeddings: bool = False  # languages.<code>.embeddings is given (only madx_emb reads it)
    # languages whose adapters stand in for this one's (madx_nearest: the first; madx_avg: the first k), nearest first;
    # ("uriel",) until load_languages chooses them
    related: tuple[str, ...] = ()
    k: int | None = None  # how many related languages madx_avg averages (None: DEFAULT_RELATED_K, or all if fewer)
    distances: tuple[float, ...] = ()  # related: uriel: each chosen language's URIEL distance, in that order

    @property
    def has_adapter(self) -> bool:
        """A language adapter of its own: trained on its corpus, or ready."""
        return bool(self.corpus or self.adapter)

    @property
    def averaged(self) -> tuple[str, ...]:
        """The related languages madx_avg averages."""
        return self.related[:self.k or DEFAULT_RELATED_K]


@dataclass(frozen=True)
class Task:
    """A task of the experiment (tasks.<name>): its data, its target languages and its own training keys."""

    name: str
    type: str  # a task family (madx/tasks/families.py)
    train: str | None  # madx source specs; {lang} is each language's code (no train or dev: ready adapters only)
    dev: str | None
    test: str
    languages: tuple[str, ...]  # the targets it is evaluated on
    all_languages: bool = True  # languages: all (the default), not a list
    train_task: Mapping = field(default_factory=frozen)  # its own train_task keys, over the global ones
    init_from: str | None = None  # the task whose training this one starts from (two-stage training)
    setups: tuple[str, ...] = ()  # the setups it is evaluated under, when not the config's
    fuse: tuple[str, ...] = ()  # tasks whose madx task adapters it fuses with its own (setup madx_fusion)
    fusion: str = DEFAULT_FUSION  # the fusion's configuration: dynamic or static (madx/adapters/fusion.py)
    tlr_languages: tuple[str, ...] | None = None  # madx_tlr: whose adapters it trains over (None: its targets')
    adapters: Mapping = field(default_factory=frozen)  # source -> a ready task adapter (directory or hub id)
    knowledge: tuple[str, ...] = ()  # the K-adapters its heads read (a task <name>+<k>... the config's task made)
    knowledge_of: str | None = None  # that task: the one this compares with (the same task without K-adapters)

    def data(self, split: str, lang: str) -> str:
        return getattr(self, split).replace("{lang}", lang)


@dataclass(frozen=True)
class Knowledge:
    """A K-adapter of the experiment (knowledge.<name>): its knowledge task, data and languages, its shape and
    training keys (the commands apply their defaults to the rest)."""

    name: str
    type: str  # dependency | relation (madx/tasks/knowledge.py)
    train: str  # a file; {lang} is each language's code
    dev: str
    languages: tuple[str, ...]
    kadapter: Mapping = field(default_factory=frozen)  # KAdapterConfig keys
    train_knowledge: Mapping = field(default_factory=frozen)  # KnowledgeTraining keys

    def data(self, split: str) -> list[str]:
        return [getattr(self, split).replace("{lang}", lang) for lang in self.languages]


@dataclass(frozen=True)
class Sections:
    """The settings sections with only the keys the config sets: each command applies its own defaults (the
    settings dataclasses of madx/core/settings.py and madx/adapters/config.py) to the rest."""

    lang_adapter: Mapping = field(default_factory=frozen)
    task_adapter: Mapping = field(default_factory=frozen)
    train_lang: Mapping = field(default_factory=frozen)
    train_task: Mapping = field(default_factory=frozen)
    full_ft: Mapping = field(default_factory=frozen)  # full_ft's overrides of train_task
    emea: Mapping = field(default_factory=frozen)  # madx_emea's test-time steps (EmeaSettings)

    def lang_layers(self, language: Language) -> Layers:
        """The sections that make a language adapter's train_lang settings, later over earlier."""
        code = language.code
        layers = [("train_lang", self.train_lang), (f"languages.{code}.train_lang", language.train_lang)]
        return layers + ([(f"languages.{code}", {"max_tokens": language.max_tokens})] if language.max_tokens else [])

    def task_layers(self, task: Task, training: str) -> Layers:
        """The sections that make `task`'s train_task settings under `training` (full_ft: its overrides on top)."""
        layers = [("train_task", self.train_task), (f"tasks.{task.name}.train_task", task.train_task)]
        return layers + ([(FULL_FT_SECTION, self.full_ft)] if TRAININGS[training].full_model else [])


@dataclass(frozen=True)
class Resources:
    """What each job of a stage asks the scheduler for."""

    gpus: int
    threads: int
    mem_mb: int
    runtime: int  # minutes


# Resources per workflow stage when compute.<stage> does not say; demo_readme and report are small CPU jobs the
# config has no key for
RESOURCE_DEFAULTS = {
    "train_lang": Resources(gpus=0, threads=1, mem_mb=8000, runtime=24 * 60),
    "train_task": Resources(gpus=0, threads=1, mem_mb=8000, runtime=6 * 60),
    "evaluate": Resources(gpus=0, threads=1, mem_mb=4000, runtime=60),
    "demo": Resources(gpus=0, threads=2, mem_mb=4000, runtime=60),
    "demo_readme": Resources(gpus=0, threads=1, mem_mb=1000, runtime=5),
    "report": Resources(gpus=0, threads=1, mem_mb=2000, runtime=10),
}


@dataclass(frozen=True)
class Compute:
    """compute: the jobs' mixed precision and each stage's resources."""

    mixed_precision: str = TrainSettings.mixed_precision  # the training settings' own default
    stages: Mapping[str, Resources] = field(default_factory=lambda: MappingProxyType(RESOURCE_DEFAULTS))

    def stage(self, name: str) -> Resources:
        return self.stages[name]


@dataclass(frozen=True)
class Demo:
    """The offline demo's part of the config: the benchmark it writes and the base model it builds."""

    data: DemoData
    shape: TinyEncoder
    pretrain: Mapping  # PretrainSettings keys the config sets
    languages: tuple  # DemoLanguage, in config order

    def language(self, code: str) -> DemoLanguage:
        return next(lang for lang in self.languages if lang.code == code)

    def language_spec(self, code: str, flags: bool = False) -> str:
        """CODE:WORD_ORDER:SCRIPT[:seen][:tokenizer][:of=PARENT@SHARE], the form `madx demo-data --language` reads
        (of=: a variety's parent and the share of its words kept); without flags,
        only what the language's data depends on."""
        language = self.language(code)
        spec = [language.code, language.word_order, language.script]
        if flags:
            spec += [name for name in ("seen", "tokenizer") if getattr(language, name)]
        if language.variety_of:  # its words depend on its parent's
            spec.append(f"of={language.variety_of}@{language.shared}")
        return ":".join(spec)

    def seen(self) -> list[str]:
        return [lang.code for lang in self.languages if lang.seen]

    def tokenizer_languages(self) -> list[str]:
        return [lang.code for lang in self.languages if lang.tokenizer]


@dataclass(frozen=True)
class Config:
    """The whole config, parsed: every object above, and every default the config may leave out."""

    where: str  # the config file, named by every error
    base_model: str
    languages: Mapping[str, Language]
    tasks: Mapping[str, Task]
    sources: tuple[str, ...]  # source_languages (all: every language), or (source_language,)
    paths: Paths = field(default_factory=Paths)
    sections: Sections = field(default_factory=Sections)
    compute: Compute = field(default_factory=Compute)
    seeds: tuple[int, ...] = (1,)  # one task training per seed
    setups: tuple[str, ...] = DEFAULT_SETUPS
    trust_remote_code: bool = False
    demo: Demo | None = None
    knowledge: Mapping[str, Knowledge] = field(default_factory=frozen)


def load_config(config: dict, where: str = "config", cls: type[Config] = Config) -> Config:
    """The raw config checked (its names, the schema, then what each section means on its own) and parsed into
    `cls` (a Config, or the Experiment built on it); a problem is a ConfigError naming `where` and the key."""
    check_names(config, where)
    check_schema(config, where)
    paths = Paths(**given(config, "results"))
    sections = load_sections(config)
    demo = load_demo(config, where)
    languages = load_languages(config, where, demo, paths, sections)
    sources = load_sources(config, where, languages)
    knowledge = load_knowledge(config, where, sources)
    tasks = with_knowledge(load_tasks(config, where, languages, sections), config, knowledge, where)
    run = {key: tuple(value) for key, value in given(config, "seeds", "setups").items()}
    parsed = cls(where=where, base_model=config["base_model"], languages=frozen(languages), tasks=frozen(tasks),
                 sources=sources, paths=paths, sections=sections, compute=load_compute(config), demo=demo,
                 knowledge=frozen(knowledge), **run, **given(config, "trust_remote_code"))
    check_related(parsed.languages, parsed.sources, tuple(config.get("setups", ())), parsed.tasks, where)
    check_init_from(parsed.tasks, where)
    check_fusions(parsed.tasks, tuple(config.get("setups", ())), where)
    for key in ("lang_adapter", "task_adapter"):
        check_section(getattr(sections, key), key, where, AdapterConfig)
    check_settings(EmeaSettings, [("emea", sections.emea)], where)
    return parsed


# ---- the config's sections as these objects (after the schema check: the layout is right)


def load_sections(config: dict) -> Sections:
    return Sections(**{name: frozen(config.get(name)) for name in SECTIONS})


def load_compute(config: dict) -> Compute:
    compute = config.get("compute", {})
    stages = {name: dataclasses.replace(default, **compute.get(name, {})) for name, default in RESOURCE_DEFAULTS.items()}
    return Compute(stages=MappingProxyType(stages), **given(compute, "mixed_precision"))


def load_demo(config: dict, where: str) -> Demo | None:
    demo = config.get("demo")
    if demo is None:
        return None
    languages = demo.get("languages")
    if not languages:
        raise ConfigError(f"{where}: demo.languages: missing; list the synthetic languages, e.g. "
                          "en: {seen: true}")
    parsed = []
    for code, entry in languages.items():
        try:
            parsed.append(DemoLanguage(code, **(entry or {})))
        except ValueError as err:
            raise ConfigError(f"{where}: demo.languages.{code}: {err}") from None
    if not any(lang.seen for lang in parsed):
        raise ConfigError(f"{where}: demo.languages: no language is seen by the base model; set seen: true on one")
    codes = [lang.code for lang in parsed]
    for lang in parsed:
        if lang.variety_of and lang.variety_of not in codes:
            raise ConfigError(f"{where}: demo.languages.{lang.code}.variety_of: {lang.variety_of!r} is not a demo "
                              f"language ({', '.join(codes)})")
        if lang.variety_of and parsed[codes.index(lang.variety_of)].variety_of:
            raise ConfigError(f"{where}: demo.languages.{lang.code}.variety_of: {lang.variety_of!r} is a variety "
                              "itself; make a variety of a language with words of its own")
    built = {}
    for cls in (DemoData, TinyEncoder):
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            built[cls] = cls(**{k: v for k, v in demo.items() if k in names})
        except ValueError as err:
            raise ConfigError(f"{where}: demo: {err}") from None
    check_settings(PretrainSettings, [("demo.pretrain", demo.get("pretrain", {}))], where)
    check_demo_shape(built[TinyEncoder], where)
    return Demo(data=built[DemoData], shape=built[TinyEncoder], pretrain=frozen(demo.get("pretrain")),
                languages=tuple(parsed))


def load_languages(config: dict, where: str, demo: Demo | None, paths: Paths, sections: Sections) -> dict:
    """Language code -> Language: the config's languages, and the demo's (each with its demo corpus unless given)."""
    entries = dict(config.get("languages") or {})
    for lang in demo.languages if demo else ():  # one with `related` and no corpus given is a target with none
        own = entries.get(lang.code, {})
        entries[lang.code] = own if own.get("related") and "corpus" not in own else {
            "corpus": paths.demo_corpus(lang.code), **own}
    if not entries:
        raise ConfigError(f"{where}: languages: missing; give each language a corpus (or a ready adapter)")
    languages = {}
    for code, entry in entries.items():
        languages[code] = _language(code, entry, where)
        check_settings(LangTraining, sections.lang_layers(languages[code]), where)
    for code, language in languages.items():
        if language.related == (URIEL,):
            languages[code] = nearest_languages(language, languages, where)
    return languages


def nearest_languages(language: Language, languages: Mapping[str, Language], where: str) -> Language:
    """`related: uriel`: the k languages (default 3) nearest to this one by URIEL distance among the experiment's
    languages with adapters, nearest first, with their distances."""
    from ..data.uriel import UrielError, nearest

    key = f"languages.{language.code}.related"
    candidates = [code for code, other in languages.items() if code != language.code and other.has_adapter]
    k = language.k or DEFAULT_RELATED_K
    try:
        chosen = nearest(language.code, candidates, k)
    except UrielError as err:
        raise ConfigError(f"{where}: {key}: uriel: {err}; or list the related languages (nearest first)") from None
    if not chosen or (language.k is not None and len(chosen) < language.k):
        raise ConfigError(f"{where}: {key}: uriel: {len(chosen)} of the languages with adapters ({', '.join(candidates)}) "
                          f"URIEL knows, {k} asked for (languages.{language.code}.k); list the related languages, or "
                          "lower k")
    return dataclasses.replace(language, related=tuple(c for c, _ in chosen), distances=tuple(d for _, d in chosen))


def _language(code: str, entry: dict, where: str) -> Language:
    corpus = entry.get("corpus")
    corpus = corpus if isinstance(corpus, list) else [corpus] if corpus is not None else []
    specs = tuple(source_spec(c) for c in corpus)
    if not specs and not entry.get("adapter") and not entry.get("related"):
        raise ConfigError(f"{where}: languages.{code}: needs a corpus (to train its language adapter), "
                          "adapter: a ready language adapter directory, or related: the languages whose adapters "
                          "stand in for its own (madx_nearest, madx_avg)")
    own = entry.get("train_lang", {})
    if "max_tokens" in own and entry.get("max_tokens"):
        raise ConfigError(f"{where}: languages.{code}: max_tokens is given twice (languages.{code}.max_tokens and "
                          f"languages.{code}.train_lang.max_tokens); keep one")
    embeddings = entry.get("embeddings") or {}
    return Language(code, corpus=specs, train_lang=frozen(own), setups=tuple(entry.get("setups", ())),
                    embeddings=Embeddings(**embeddings), sets_embeddings=bool(embeddings),
                    related=_related(entry.get("related")), adapter=_adapter(entry.get("adapter")),
                    **given(entry, "max_tokens", "romanize", "k"))


def parsed_source(given, key: str, where: str) -> Source:
    """A data source as the config gives it (a string or a {hub: ...} mapping), parsed; a malformed one is an error
    naming the key."""
    try:
        return Source.parse(source_spec(given))
    except DataError as err:
        raise ConfigError(f"{where}: {key}: {err}") from None


def _adapter(adapter) -> str | None:
    """A ready adapter (languages.<code>.adapter, tasks.<name>.adapter.<source>) as one string: a directory,
    `org/name`, or `org/name@revision`."""
    if isinstance(adapter, Mapping):
        return f"{adapter['id']}@{adapter['revision']}" if adapter.get("revision") else adapter["id"]
    return adapter


def _related(related) -> tuple[str, ...]:
    """languages.<code>.related as given: a list of languages, or URIEL ("uriel": chosen by load_languages)."""
    return (URIEL,) if related == URIEL else tuple(related or ())


def load_sources(config: dict, where: str, languages: Mapping) -> tuple[str, ...]:
    if ("source_language" in config) == ("source_languages" in config):
        raise ConfigError(f"{where}: give either source_language (one) or source_languages (a list, or all)")
    if "source_language" in config:
        key, sources = "source_language", [config["source_language"]]
    else:
        key, given_sources = "source_languages", config["source_languages"]
        sources = list(languages) if given_sources == "all" else given_sources
    unknown = [s for s in sources if s not in languages]
    if unknown:
        raise ConfigError(f"{where}: {key}: {', '.join(map(repr, unknown))} not among languages ({', '.join(languages)})")
    return tuple(sources)


def load_tasks(config: dict, where: str, languages: Mapping, sections: Sections) -> dict:
    """Task name -> Task, each with its target languages (all: every language) and training settings checked."""
    tasks = {}
    for name, entry in config["tasks"].items():
        all_languages = entry.get("languages", "all") == "all"
        targets = list(languages) if all_languages else entry["languages"]
        unknown = [lang for lang in targets if lang not in languages]
        if unknown:
            raise ConfigError(f"{where}: tasks.{name}.languages: {unknown} not under languages; add an entry "
                              "for each (a corpus or an adapter)")
        for lang in entry.get("tlr_languages", ()):
            if lang not in languages or not languages[lang].has_adapter:
                what = "not under languages" if lang not in languages else "a language with no adapter (no corpus)"
                raise ConfigError(f"{where}: tasks.{name}.tlr_languages: {lang!r} is {what}; madx_tlr trains over "
                                  "the adapters of languages that have them")
        if "fusion" in entry and not entry.get("fuse"):
            raise ConfigError(f"{where}: tasks.{name}.fusion: given without fuse, so no fusion runs; add "
                              f"`fuse: [<other task>, ...]` or remove `fusion`")
        if ("train" in entry) != ("dev" in entry):
            given_split, missing = ("train", "dev") if "train" in entry else ("dev", "train")
            raise ConfigError(f"{where}: tasks.{name}: {given_split} without {missing}; a task adapter trains on "
                              f"train and picks its checkpoint on dev: give both (or neither, with ready adapters)")
        if "train" not in entry and "adapter" not in entry:
            raise ConfigError(f"{where}: tasks.{name}: no train and dev data and no ready adapter; give train and "
                              "dev (its task adapters are trained), or adapter: {<source>: <directory or hub id>}")
        streamed = [split for split in SPLITS if split in entry
                    and parsed_source(entry[split], f"tasks.{name}.{split}", where).streaming]
        if streamed:
            raise ConfigError(f"{where}: tasks.{name}.{streamed[0]}: streaming is for corpora (languages.<lang>."
                              "corpus); labelled data is read whole: remove streaming")
        tasks[name] = Task(name, entry["type"], languages=tuple(targets), all_languages=all_languages,
                           train_task=frozen(entry.get("train_task")), init_from=entry.get("init_from"),
                           setups=tuple(entry.get("setups", ())), fuse=tuple(entry.get("fuse", ())),
                           tlr_languages=tuple(entry["tlr_languages"]) if "tlr_languages" in entry else None,
                           adapters=frozen({source: _adapter(spec) for source, spec in entry.get("adapter", {}).items()
                                            }),
                           **given(entry, "fusion"),
                           **{split: source_spec(entry[split]) if split in entry else None for split in SPLITS})
        for training in TRAININGS:  # full_ft: the full_ft overrides on top
            check_settings(TaskTraining, sections.task_layers(tasks[name], training), where)
    return tasks


def load_knowledge(config: dict, where: str, sources: tuple[str, ...]) -> dict:
    """K-adapter name -> Knowledge (knowledge.<name>), its shape and training keys checked."""
    found = {}
    for name, entry in (config.get("knowledge") or {}).items():
        if not re.fullmatch(NAME, name):
            raise ConfigError(f"{where}: knowledge: {name!r} is not a valid K-adapter name: letters, digits, '-' and "
                              "'_' only (it becomes part of the result paths); rename it")
        languages = tuple(entry.get("languages", sources))
        if "{lang}" not in entry["train"] and len(languages) > 1:
            raise ConfigError(f"{where}: knowledge.{name}.train: one file for {len(languages)} languages; put {{lang}} "
                              "in the path (each language's file) or give one language")
        found[name] = Knowledge(name, entry["type"], entry["train"], entry["dev"], languages,
                                frozen(entry.get("kadapter")), frozen(entry.get("train_knowledge")))
        check_section(found[name].kadapter, f"knowledge.{name}.kadapter", where, KAdapterConfig)
        check_settings(KnowledgeTraining, [(f"knowledge.{name}.train_knowledge", found[name].train_knowledge)],
                       where)
    return found


def with_knowledge(tasks: dict, config: dict, knowledge: Mapping, where: str) -> dict:
    """The tasks, and after each that reads K-adapters (tasks.<t>.knowledge) its twin <t>+<k>...: the same task, its
    heads reading them, under every adapter setup of the task (or the ones given), so the two compare."""
    out = {}
    for name, task in tasks.items():
        out[name] = task
        given = config["tasks"][name].get("knowledge")
        if not given:
            continue
        use, setups = (given["use"], given.get("setups", ())) if isinstance(given, Mapping) else (given, ())
        unknown = [k for k in use if k not in knowledge]
        if unknown:
            raise ConfigError(f"{where}: tasks.{name}.knowledge: {unknown[0]!r} is not under knowledge "
                              f"({', '.join(knowledge) or 'none there'}); add knowledge.{unknown[0]}: {{type, train, "
                              "dev}, or remove it")
        if task.adapters:
            raise ConfigError(f"{where}: tasks.{name}.knowledge: the task's adapters are ready (tasks.{name}.adapter), "
                              "trained without K-adapters; K-adapters are read by heads madx trains")
        full = [s for s in setups if SETUPS[s].training.full_model]
        if full:
            raise ConfigError(f"{where}: tasks.{name}.knowledge.setups: {full[0]} fine-tunes the encoder the K-adapters "
                              "read; K-adapters are for the adapter setups")
        setups = setups or [s for s in task.setups or config.get("setups", DEFAULT_SETUPS)
                            if not SETUPS[s].training.full_model]
        twin = f"{name}+{'+'.join(use)}"
        out[twin] = dataclasses.replace(task, name=twin, knowledge=tuple(use), knowledge_of=name, fuse=(),
                                        setups=tuple(setups))
    return out
