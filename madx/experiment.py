"""The experiment config the workflow runs: schema check, then meaning checks, each error naming its key.

Everything here runs before Snakemake builds the DAG, so a typo costs seconds, not a GPU day. The
Experiment also owns every path the workflow writes (`Paths`) and every default it applies: the
.smk files ask it, and never read the raw config.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import yaml

from .config import AdapterConfig, AdapterConfigError
from .demo import DEMO_TASKS, SPLITS, DemoData, DemoLanguage, corpus_path, task_path
from .metrics import TASK_TYPES
from .settings import (EMBEDDING_MODES, MIXED_PRECISION, ROMANIZERS, SCRIPT_KEYS, field_type, LangTraining,
                       PretrainSettings, TaskTraining)
from .setups import (DEFAULT_SETUPS, EVAL_SETUPS, LANG_ADAPTER_KIND, NEW_SCRIPT_SETUPS, TRAIN_LANG_ADAPTER, TRAINED_BY,
                     lang_adapter_for)
from .shapes import TinyEncoder

SCHEMA = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"
# Config sections checked against a dataclass: (section, dataclass, fields that come from elsewhere in the config)
SECTIONS = {
    "lang_adapter": (AdapterConfig, ()),
    "task_adapter": (AdapterConfig, ()),
    # compute.mixed_precision; the new-script keys come from languages.<lang> (romanize, embeddings)
    "train_lang": (LangTraining, ("mixed_precision", "eval_every", *SCRIPT_KEYS)),
    "train_task": (TaskTraining, ("mixed_precision", "seed")),  # seeds: one task training per seed
    "full_ft": (TaskTraining, ("mixed_precision", "seed")),
}
PRETRAIN_SKIP = ("mixed_precision", "eval_every")
# Resources per workflow stage when compute.<stage> does not say
RESOURCE_DEFAULTS = {
    "train_lang": dict(gpus=0, threads=1, mem_mb=8000, runtime=24 * 60),
    "train_task": dict(gpus=0, threads=1, mem_mb=8000, runtime=6 * 60),
    "evaluate": dict(gpus=0, threads=1, mem_mb=4000, runtime=60),
    "demo": dict(gpus=0, threads=2, mem_mb=4000, runtime=60),
}


class ConfigError(ValueError):
    """A config problem: `where: key: what is wrong; what to do`."""


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML ({getattr(err, 'problem', err)}); fix the syntax there") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a YAML mapping (key: value), got {type(data).__name__}")
    return data


# ---- the schema: the YAML file's layout, with madx's own dataclasses and enumerations filled in

_JSON_TYPES = {"bool": "boolean", "int": "integer", "float": "number", "str": "string"}


def field_schema(f: dataclasses.Field) -> dict:
    """The JSON schema of one settings field, from its annotation and metadata (help, choices)."""
    annotation = str(f.type)
    if f.name == "compile":
        out = {"oneOf": [{"type": "boolean"}, {"enum": list(f.metadata["choices"])}]}
    elif "choices" in f.metadata:
        out = {"enum": list(f.metadata["choices"])}
    elif annotation.startswith("tuple"):
        out = {"type": "array", "items": {"type": "integer", "minimum": 0}}
    else:
        out = {"type": _JSON_TYPES[field_type(f)]}
    if "help" in f.metadata:
        out["description"] = f.metadata["help"]
    return out


def dataclass_schema(cls, skip=()) -> dict:
    return {"type": "object", "additionalProperties": False,
            "properties": {f.name: field_schema(f) for f in dataclasses.fields(cls) if f.init and f.name not in skip}}


def config_schema() -> dict:
    schema = yaml.safe_load(SCHEMA.read_text())
    defs = schema["$defs"]
    defs["adapter"] = dataclass_schema(AdapterConfig)
    for section in ("train_lang", "train_task"):
        cls, skip = SECTIONS[section]
        defs["lang_training" if section == "train_lang" else "task_training"] = dataclass_schema(cls, skip)
    defs["pretraining"] = dataclass_schema(PretrainSettings, PRETRAIN_SKIP)
    defs["demo_language"] = dataclass_schema(DemoLanguage, ("code",))
    defs["task_type"] = {"enum": list(TASK_TYPES)}
    defs["setup"] = {"enum": list(EVAL_SETUPS)}
    defs["new_script_setup"] = {"enum": list(NEW_SCRIPT_SETUPS)}
    defs["romanizer"] = {"enum": list(ROMANIZERS)}
    defs["embedding_mode"] = {"enum": list(EMBEDDING_MODES)}
    defs["mixed_precision"] = {"enum": list(MIXED_PRECISION)}
    demo = schema["properties"]["demo"]["properties"]
    for cls in (DemoData, TinyEncoder):
        demo.update(dataclass_schema(cls)["properties"])
    return schema


def _schema_errors(config: dict, where: str) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(config_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return
    err = errors[0]
    key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed)) if isinstance(err.instance, dict) else []
        hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        raise ConfigError(f"{where}: {key}: unknown key {', '.join(map(repr, extra))}{hint}")
    raise ConfigError(f"{where}: {key}: {err.message}")


def source_spec(value) -> str:
    """A config data source (path string or {hub: ...} mapping) as a madx source string."""
    if isinstance(value, str):
        return value
    options = {k: value[k] for k in ("config", "split", "column", "revision") if k in value}
    return f"hub:{value['hub']}" + (f"?{urlencode(options, safe='{}')}" if options else "")


# ---- where everything goes


@dataclass(frozen=True)
class Paths:
    """Every path the workflow writes. Called with wildcard names ("{lang}") it gives the rules' patterns,
    with values the files themselves: one format string each."""

    results: str = "results"

    def lang_adapter(self, lang="{lang}") -> str:
        return f"{self.results}/adapters/lang/{lang}"

    def script_adapter(self, kind="{kind}", lang="{lang}") -> str:
        """A language's adapter for a new-script setup: kind translit (romanized corpus) or emb (new embeddings)."""
        return f"{self.results}/adapters/lang_{kind}/{lang}"

    def corpus_cache(self) -> str:
        return f"{self.results}/corpora"

    def task(self, task="{task}", source="{source}", setup="{setup}", seed="{seed}") -> str:
        return f"{self.results}/tasks/{task}/{source}/{setup}/seed{seed}"

    def evaluation(self, task="{task}", source="{source}", lang="{lang}", setup="{setup}", seed="{seed}") -> str:
        """Zero-shot transfer of `task` from `source` to `lang`."""
        return f"{self.results}/eval/{task}/{source}/{lang}/seed{seed}/{setup}.json"

    def evaluations(self, task="{task}", source="{source}", lang="{lang}") -> str:
        """Every (setup, seed) of one (task, source, target): the evaluation job's output (each run also has its
        own file, `evaluation()`, which a rerun of the job keeps when its inputs did not change)."""
        return f"{self.results}/eval/{task}/{source}/{lang}/results.json"

    def report(self, name: str = "") -> str:
        return f"{self.results}/report/{name}".rstrip("/")

    def report_outputs(self) -> dict[str, str]:
        """The report's files, by name: report.md and the tables and plot it is made of."""
        return {name.replace(".", "_"): self.report(name)
                for name in ("report.md", "results.csv", "per_type.csv", "coverage.csv", "results.png", "matrix.png",
                             "lang_adapters.png")}

    def benchmark(self, *parts: str) -> str:
        """Snakemake's per-job time and memory."""
        return f"{self.results}/benchmarks/{'/'.join(parts)}.tsv"

    def log(self, *parts: str) -> str:
        """A job's log, under `logs/` where Snakemake runs; a run with its own results folder keeps its logs apart
        too (results/xlmr-wikiann -> logs/xlmr-wikiann/), so two configs never write each other's logs."""
        root = "logs" if self.results == "results" else f"logs/{Path(self.results).name}"
        return f"{root}/{'/'.join(parts)}.log"

    def demo_data(self) -> str:
        return f"{self.results}/demo/data"

    def demo_base_model(self) -> str:
        return f"{self.results}/demo/base_model"

    def demo_corpus(self, lang="{lang}") -> str:
        return str(corpus_path(self.demo_data(), lang))  # the layout madx/demo.py writes

    def demo_task_file(self, lang="{lang}", split="{split}", kind="ner") -> str:
        return str(task_path(self.demo_data(), lang, split, kind))

    def demo_readme(self) -> str:
        return f"{self.demo_data()}/README.md"


@dataclass(frozen=True)
class Demo:
    """The offline demo's part of the config: the benchmark it writes and the base model it builds."""

    data: DemoData
    shape: TinyEncoder
    pretrain: dict  # PretrainSettings keys the config sets
    languages: tuple  # DemoLanguage, in config order

    def language(self, code: str) -> DemoLanguage:
        return next(lang for lang in self.languages if lang.code == code)

    def language_spec(self, code: str, flags: bool = False) -> str:
        """CODE:WORD_ORDER:SCRIPT[:seen][:tokenizer], the form `madx demo-data --language` reads; without flags,
        only what the language's data depends on."""
        language = self.language(code)
        spec = [language.code, language.word_order, language.script]
        if flags:
            spec += [name for name in ("seen", "tokenizer") if getattr(language, name)]
        return ":".join(spec)

    def seen(self) -> list[str]:
        return [lang.code for lang in self.languages if lang.seen]

    def tokenizer_languages(self) -> list[str]:
        return [lang.code for lang in self.languages if lang.tokenizer]


@dataclass(frozen=True)
class Experiment:
    config: dict
    where: str
    languages: dict = field(default_factory=dict)  # lang -> {"corpus": [spec], "adapter": path|None, ...}
    tasks: dict = field(default_factory=dict)  # task -> {"type", "train", "dev", "test", "languages"}
    sources: list = field(default_factory=list)  # source_languages (all: every language), or [source_language]
    demo: Demo | None = None

    @property
    def paths(self) -> Paths:
        return Paths(self.config.get("results", "results"))

    @property
    def base_model(self) -> str:
        return self.config["base_model"]

    @property
    def builds_base_model(self) -> bool:
        """The demo builds its base model when the config points at where it goes."""
        return self.demo is not None and self.base_model == self.paths.demo_base_model()

    @property
    def trust_remote_code(self) -> bool:
        return self.config.get("trust_remote_code", False)

    @property
    def seeds(self) -> list:
        return self.config.get("seeds", [1])

    @property
    def setups(self) -> list:
        return self.config.get("setups", list(DEFAULT_SETUPS))

    @property
    def mixed_precision(self) -> str:
        return self.config.get("compute", {}).get("mixed_precision", "no")

    def compute(self, stage: str, key: str):
        return self.config.get("compute", {}).get(stage, {}).get(key, RESOURCE_DEFAULTS[stage][key])

    def section(self, *names: str) -> dict:
        """Config sections merged in order (later wins): the keys the config sets, for the commands' options."""
        merged = {}
        for name in names:
            merged.update(self.config.get(name, {}))
        return merged

    def lang_training(self, lang: str) -> dict:
        """The train_lang keys the config sets for `lang`'s language adapter: the global `train_lang`, then the
        language's own (`languages.<lang>.train_lang`, e.g. fewer steps for a small corpus)."""
        entry = self.languages[lang]
        own = {**entry["train_lang"], **({"max_tokens": entry["max_tokens"]} if entry["max_tokens"] else {})}
        return {**self.config.get("train_lang", {}), **own}

    def task_training(self, task: str, setup: str) -> dict:
        """The train_task keys the config sets for `task` under `setup`: the global `train_task`, the task's own
        (`tasks.<task>.train_task`), then for full_ft the `full_ft` overrides."""
        own = {**self.config.get("train_task", {}), **self.tasks[task]["train_task"]}
        return {**own, **self.config.get("full_ft", {})} if setup == "full_ft" else own

    def lang_adapter_dir(self, lang: str) -> str:
        return self.languages[lang]["adapter"] or self.paths.lang_adapter(lang)

    def setups_for(self, lang: str) -> list:
        """The setups evaluated on `lang` as a target: the config's, then the language's own new-script ones."""
        return list(dict.fromkeys([*self.setups, *self.languages[lang]["setups"]]))

    def romanizer(self, lang: str) -> str | None:
        return self.languages[lang]["romanize"]

    def script_training(self, kind: str, lang: str) -> dict:
        """The train-lang keys of `lang`'s adapter for a new-script setup: its own train_lang keys, and the
        romanizer (translit) or the embeddings (emb, matched to the base through the romanizer when it has one)."""
        entry = self.languages[lang]
        if kind == "translit":
            return {**self.lang_training(lang), "romanize": entry["romanize"]}
        emb = entry["embeddings"]
        extra = {"embeddings": emb.get("mode", "new"), **({"vocab_size": emb["vocab_size"]} if "vocab_size" in emb else {}),
                 **({"embedding_lr": emb["lr"]} if "lr" in emb else {}),
                 **({"match_romanized": entry["romanize"]} if entry["romanize"] else {})}
        return {**self.lang_training(lang), **extra}

    def script_adapters(self) -> list[tuple[str, str]]:
        """(kind, lang) of every new-script language adapter some evaluation stacks."""
        return sorted({(LANG_ADAPTER_KIND[setup], lang) for _, _, lang, setup, _ in self.eval_targets()
                       if setup in LANG_ADAPTER_KIND})

    def task_dir(self, task: str, source: str, setup: str, seed) -> str:
        """The task training `setup` evaluates (source_la uses madx's)."""
        return self.paths.task(task, source, TRAINED_BY[setup], seed)

    def init_from_dir(self, task: str, source: str, setup: str, seed) -> str | None:
        """Two-stage training: the output of the task `task` starts from (same source, setup and seed), or None."""
        first = self.tasks[task]["init_from"]
        return self.task_dir(first, source, setup, seed) if first else None

    def task_data(self, task: str, split: str, lang: str) -> str:
        return self.tasks[task][split].replace("{lang}", lang)

    def train_lang_adapter(self, setup: str, source: str) -> str | None:
        """The language adapter a setup's task adapter is trained on (the source's), or None."""
        return self.lang_adapter_dir(source) if TRAIN_LANG_ADAPTER[TRAINED_BY[setup]] else None

    def eval_lang_adapter(self, setup: str, source: str, lang: str) -> str | None:
        if setup in LANG_ADAPTER_KIND:
            return self.paths.script_adapter(LANG_ADAPTER_KIND[setup], lang)
        adapter_lang = lang_adapter_for(setup, source, lang)
        return self.lang_adapter_dir(adapter_lang) if adapter_lang else None

    def eval_targets(self) -> list:
        """(task, source, target, setup, seed) of every evaluation the experiment runs: each source to every
        language of the task (itself too, when listed: the in-language score)."""
        return [(task, source, lang, setup, seed) for task, source, lang in self.eval_jobs()
                for setup, seed in self.eval_runs(task, source, lang)]

    def eval_runs(self, task: str, source: str, lang: str) -> list:
        """(setup, seed) of every evaluation of `task` from `source` on `lang`: one evaluation job's runs."""
        return [(setup, seed) for setup in self.setups_for(lang) for seed in self.seeds]

    def eval_jobs(self) -> list:
        """(task, source, target) of every evaluation job: each source to every language of the task."""
        return [(task, source, lang) for task, spec in self.tasks.items() for source in self.sources
                for lang in spec["languages"]]

    def eval_outputs(self) -> list[str]:
        return [self.paths.evaluations(*job) for job in self.eval_jobs()]

    def lang_adapters_needed(self) -> list:
        """Languages whose adapter some setup uses: the source's for training, the targets' for evaluation."""
        needed = set()
        # a language's own new-script setups train on madx's task adapter, which needs the source's adapter
        for setup in dict.fromkeys([*self.setups, *(s for entry in self.languages.values() for s in entry["setups"])]):
            if TRAIN_LANG_ADAPTER[TRAINED_BY[setup]]:
                needed |= set(self.sources)
            if setup not in LANG_ADAPTER_KIND:  # the new-script setups stack their own adapters (script_adapters)
                needed |= {lang_adapter_for(setup, source, lang) for spec in self.tasks.values()
                           for source in self.sources for lang in spec["languages"]} - {None}
        return sorted(needed)

    def lang_adapters_to_train(self) -> list:
        return [lang for lang in self.lang_adapters_needed() if not self.languages[lang]["adapter"]]

    def demo_outputs(self) -> set[str]:
        """The files the demo writes (none without a demo)."""
        if self.demo is None:
            return set()
        out = {self.paths.demo_readme()}
        for lang in self.demo.languages:
            out.add(self.paths.demo_corpus(lang.code))
            out |= {self.paths.demo_task_file(lang.code, split, kind) for split in SPLITS for kind in DEMO_TASKS}
        return {os.path.normpath(p) for p in out}


# ---- checks


def _check_section(config: dict, key: str, where: str, cls, **extra) -> None:
    values = {k: tuple(v) if k == "leave_out" else v for k, v in config.get(key, {}).items()}
    try:
        cls(**values, **extra)
    except (AdapterConfigError, ValueError, TypeError) as err:
        raise ConfigError(f"{where}: {key}: {err}") from None


def _check_local(spec: str, key: str, where: str, made: set[str]) -> None:
    if spec.startswith("hub:") or os.path.normpath(spec) in made:
        return
    path = Path(spec)
    if not path.exists():
        hint = ""
        if made and Path(spec).parent.as_posix() in {Path(p).parent.as_posix() for p in made}:
            hint = " (the demo makes files there only for its languages: add the language to demo.languages)"
        raise ConfigError(f"{where}: {key}: file {spec!r} not found{hint}; fix the path or use a hub source "
                          "({hub: ID})")
    if path.is_file() and path.stat().st_size == 0:
        raise ConfigError(f"{where}: {key}: file {spec!r} is empty")


def _check_ready_adapter(path: str, base_model: str, key: str, where: str) -> None:
    """A ready language adapter: a readable AdapterHub config, a weights file, and (when the base model is a
    local directory already) the base model's hidden size and model type. The weights load at job time."""
    from .io import (CONFIG_NAME, LEGACY_WEIGHTS_NAME, WEIGHTS_NAME, AdapterLoadError, made_for_mismatch,
                     read_adapter_config)

    try:
        meta, _ = read_adapter_config(path)
    except AdapterLoadError as err:
        raise ConfigError(f"{where}: {key}: {err}") from None
    if not any((Path(path) / name).is_file() for name in (WEIGHTS_NAME, LEGACY_WEIGHTS_NAME)):
        raise ConfigError(f"{where}: {key}: {path!r} has {CONFIG_NAME} but no weights ({WEIGHTS_NAME} or "
                          f"{LEGACY_WEIGHTS_NAME}); copy the whole adapter directory")
    base_config = Path(base_model) / "config.json"
    if not base_config.is_file():  # a hub id, or a base model the workflow builds: checked when the job loads it
        return
    mismatch = made_for_mismatch(meta, json.loads(base_config.read_text()))
    if mismatch is not None:
        field_name, made_for, has = mismatch
        raise ConfigError(f"{where}: {key}: {path!r} was made for {field_name} {made_for!r}, base_model "
                          f"{base_model!r} has {has!r}; use a language adapter trained on this base model")


def _load_demo(config: dict, where: str) -> Demo | None:
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
    built = {}
    for cls in (DemoData, TinyEncoder):
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            built[cls] = cls(**{k: v for k, v in demo.items() if k in names})
        except ValueError as err:
            raise ConfigError(f"{where}: demo: {err}") from None
    _check_section(demo, "pretrain", f"{where}: demo", PretrainSettings)
    return Demo(data=built[DemoData], shape=built[TinyEncoder], pretrain=dict(demo.get("pretrain", {})),
                languages=tuple(parsed))


def _load_languages(config: dict, where: str, demo: Demo | None, paths: Paths) -> dict:
    entries = dict(config.get("languages") or {})
    for lang in demo.languages if demo else ():  # a demo language's corpus is its demo corpus unless given
        entries[lang.code] = {"corpus": paths.demo_corpus(lang.code), **entries.get(lang.code, {})}
    if not entries:
        raise ConfigError(f"{where}: languages: missing; give each language a corpus (or a ready adapter)")
    languages = {}
    for lang, entry in entries.items():
        corpus = entry.get("corpus")
        corpus = corpus if isinstance(corpus, list) else [corpus] if corpus is not None else []
        specs = [source_spec(c) for c in corpus]
        if not specs and not entry.get("adapter"):
            raise ConfigError(f"{where}: languages.{lang}: needs a corpus (to train its language adapter) or "
                              "adapter: a ready language adapter directory")
        own = entry.get("train_lang", {})
        if "max_tokens" in own and entry.get("max_tokens"):
            raise ConfigError(f"{where}: languages.{lang}: max_tokens is given twice (also under train_lang); keep one")
        _check_section({"train_lang": {**config.get("train_lang", {}), **own}}, "train_lang",
                       f"{where}: languages.{lang}", LangTraining)
        languages[lang] = {"corpus": specs, "adapter": entry.get("adapter"), "max_tokens": entry.get("max_tokens"),
                           "train_lang": own, "setups": list(entry.get("setups", [])),
                           "romanize": entry.get("romanize"), "embeddings": dict(entry.get("embeddings") or {})}
    return languages


def _check_new_scripts(exp: "Experiment") -> None:
    """A language that runs a new-script setup has what it needs: a corpus, a romanizer for madx_translit (one
    that is installed), and no new-script keys it would ignore."""
    from .translit import RomanizerError, check_installed

    where = exp.where
    for lang, entry in exp.languages.items():
        runs = set()
        for spec in exp.tasks.values():
            if lang in spec["languages"]:
                runs |= set(exp.setups_for(lang)) & set(NEW_SCRIPT_SETUPS)
        if runs and not entry["corpus"]:
            raise ConfigError(f"{where}: languages.{lang}: {', '.join(sorted(runs))} train their own language adapter "
                              "and need the language's corpus: give corpus")
        if "madx_translit" in runs and not entry["romanize"]:
            raise ConfigError(f"{where}: languages.{lang}.romanize: madx_translit needs a romanizer for {lang} "
                              f"({', '.join(ROMANIZERS)})")
        if entry["embeddings"] and "madx_emb" not in runs:
            raise ConfigError(f"{where}: languages.{lang}.embeddings: set, but {lang} runs no madx_emb; add it to "
                              f"languages.{lang}.setups (or remove embeddings)")
        if entry["romanize"]:
            try:
                check_installed(entry["romanize"])
            except RomanizerError as err:
                raise ConfigError(f"{where}: languages.{lang}.romanize: {err}") from None


def _load_sources(config: dict, where: str, languages: dict) -> list[str]:
    if ("source_language" in config) == ("source_languages" in config):
        raise ConfigError(f"{where}: give either source_language (one) or source_languages (a list, or all)")
    if "source_language" in config:
        key, sources = "source_language", [config["source_language"]]
    else:
        key, given = "source_languages", config["source_languages"]
        sources = list(languages) if given == "all" else given
    unknown = [s for s in sources if s not in languages]
    if unknown:
        raise ConfigError(f"{where}: {key}: {', '.join(map(repr, unknown))} not among languages ({', '.join(languages)})")
    return sources


def load_experiment(config: dict, where: str = "config", *, check_files: bool = True) -> Experiment:
    _schema_errors(config, where)
    paths = Paths(config.get("results", "results"))
    demo = _load_demo(config, where)
    languages = _load_languages(config, where, demo, paths)
    sources = _load_sources(config, where, languages)
    tasks = {}
    for task, entry in config["tasks"].items():
        targets = list(languages) if entry.get("languages", "all") == "all" else entry["languages"]
        unknown = [lang for lang in targets if lang not in languages]
        if unknown:
            raise ConfigError(f"{where}: tasks.{task}.languages: {unknown} not under languages; add an entry "
                              "for each (a corpus or an adapter)")
        tasks[task] = {"type": entry["type"], "languages": targets, "train_task": entry.get("train_task", {}),
                       "init_from": entry.get("init_from"), **{split: source_spec(entry[split]) for split in SPLITS}}
        if entry.get("train_task"):
            _check_section({"train_task": {**config.get("train_task", {}), **entry["train_task"]}}, "train_task",
                           f"{where}: tasks.{task}", TaskTraining)
    _check_init_from(config, where)
    for key, (cls, skip) in SECTIONS.items():
        base = config.get("train_task", {}) if key == "full_ft" else {}
        _check_section({key: {**base, **config.get(key, {})}}, key, where, cls)
    exp = Experiment(config=config, where=where, languages=languages, tasks=tasks, sources=sources, demo=demo)
    _check_new_scripts(exp)
    if check_files:
        _check_files(exp)
    return exp


def _check_init_from(config: dict, where: str) -> None:
    """tasks.<task>.init_from names another task of the same type, and following them never comes back."""
    tasks = config["tasks"]
    for task, entry in tasks.items():
        seen, current = [task], entry.get("init_from")
        while current is not None:
            if current not in tasks:
                raise ConfigError(f"{where}: tasks.{task}.init_from: {current!r} is not a task here ({', '.join(tasks)})")
            if tasks[current]["type"] != tasks[task]["type"]:
                raise ConfigError(f"{where}: tasks.{task}.init_from: {current!r} is a {tasks[current]['type']} task, "
                                  f"{task!r} a {tasks[task]['type']} one; a task starts only from one of its own type")
            if current in seen:
                raise ConfigError(f"{where}: tasks.{task}.init_from: a cycle ({' -> '.join(seen + [current])})")
            seen.append(current)
            current = tasks[current].get("init_from")


def _check_files(exp: Experiment) -> None:
    """Every local file a job will read exists, or the workflow makes it: checked for exactly the languages,
    tasks and splits the experiment runs, so no configured result can silently never appear."""
    made = exp.demo_outputs()
    for lang in sorted({*exp.lang_adapters_to_train(), *(lang for _, lang in exp.script_adapters())}):
        for spec in exp.languages[lang]["corpus"]:
            _check_local(spec, f"languages.{lang}.corpus", exp.where, made)
    for lang, entry in exp.languages.items():
        if entry["adapter"]:
            _check_ready_adapter(entry["adapter"], exp.base_model, f"languages.{lang}.adapter", exp.where)
    for task, spec in exp.tasks.items():
        for split, langs in (("train", exp.sources), ("dev", exp.sources), ("test", spec["languages"])):
            for lang in langs:
                _check_local(exp.task_data(task, split, lang), f"tasks.{task}.{split} ({lang})", exp.where, made)


def load_experiment_file(path: str | Path, **kwargs) -> Experiment:
    return load_experiment(load_yaml(path), str(path), **kwargs)
