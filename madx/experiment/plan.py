"""The experiment config the workflow runs: schema check, then meaning checks, each error naming its key.

Everything here runs before Snakemake builds the DAG, so a typo costs seconds, not a GPU day. The
Experiment also owns every path the workflow writes (`Paths`) and every default it applies: the
.smk files ask it, and never read the raw config.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from pathlib import Path
from urllib.parse import urlencode

import yaml

from ..adapters.config import AdapterConfig, AdapterConfigError
from ..core.errors import MadxError
from ..core.settings import (AT_LEAST, EMBEDDING_MODES, MIXED_PRECISION, POSITIVE, ROMANIZERS, SCRIPT_KEYS, WHY,
                             LangTraining, PretrainSettings, SettingError, TaskTraining, TrainSettings, bound_message,
                             field_type)
from ..core.setups import DEFAULT_SETUPS, EVAL_SETUPS, NEW_SCRIPT_SETUPS, SETUPS, TRAININGS
from ..data.hub import ModelLoadError, check_base_model_dir, looks_like_a_path, max_sequence_length, read_model_config
from ..demo.data import DEMO_TASKS, SPLITS, DemoData, DemoLanguage, TinyEncoder, corpus_path, task_path
from ..tasks.metrics import TASK_TYPES

SCHEMA = Path(__file__).resolve().parent / "config.schema.yaml"
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
# A language code or task name: part of every result path and a Snakemake wildcard (workflows/common.smk)
NAME = r"[A-Za-z0-9_\-]+"
# Resources per workflow stage when compute.<stage> does not say
RESOURCE_DEFAULTS = {
    "train_lang": dict(gpus=0, threads=1, mem_mb=8000, runtime=24 * 60),
    "train_task": dict(gpus=0, threads=1, mem_mb=8000, runtime=6 * 60),
    "evaluate": dict(gpus=0, threads=1, mem_mb=4000, runtime=60),
    "demo": dict(gpus=0, threads=2, mem_mb=4000, runtime=60),
}


class ConfigError(MadxError, ValueError):
    """A config problem: `where: key: what is wrong; what to do`."""


def load_yaml(path: str | Path) -> dict:
    """The config file as a dict; invalid YAML and duplicate keys (which YAML silently resolves to the last) are
    errors naming the line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    text = path.read_text()
    try:
        _refuse_duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader), "", path, set())
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML ({getattr(err, 'problem', err)}); fix the syntax there") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a YAML mapping (key: value), got {type(data).__name__}")
    return data


def _refuse_duplicate_keys(node, path: str, where: Path, seen_nodes: set) -> None:
    if node is None or id(node) in seen_nodes:  # an alias repeats a node already walked
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicate_keys(item, f"{path}[{i}]", where, seen_nodes)
    if not isinstance(node, yaml.MappingNode):
        return
    lines = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        name = f"{path}.{key}" if path else str(key)
        if key is not None and key != "<<":  # '<<' merges a mapping in: its keys may repeat by design
            line = key_node.start_mark.line + 1
            if key in lines:
                raise ConfigError(f"{where}:{line}: {name}: duplicate key (first at line {lines[key]}); YAML would "
                                  "silently keep only the last: keep one")
            lines[key] = line
        _refuse_duplicate_keys(value_node, name, where, seen_nodes)


def check_config_files(paths: list) -> None:
    """The config files Snakemake read (workflow.configfiles): exactly one, without duplicate keys. A second one is
    nearly always a target written after --configfile, which takes every word after it."""
    if len(paths) > 1:
        raise ConfigError(f"{len(paths)} config files given ({', '.join(map(str, paths))}): a madx experiment is one "
                          "config file, and --configfile takes every word after it; put targets before --configfile "
                          "(snakemake -n TARGET --configfile CONFIG)")
    for path in paths:
        load_yaml(path)


def _check_names(config: dict, where: str) -> None:
    """Language codes and task names become file paths and wildcards: letters, digits, '-' and '_' only."""
    sections = {"languages": config.get("languages"), "tasks": config.get("tasks"),
                "demo.languages": (config.get("demo") or {}).get("languages")}
    for key, entries in sections.items():
        for name in entries if isinstance(entries, dict) else ():
            if not isinstance(name, str):  # YAML 1.1 reads no, yes, on, off as booleans and 1 as a number
                raise ConfigError(f"{where}: {key}: {name!r} is not a name: YAML read this key as a "
                                  f"{type(name).__name__}; quote it (e.g. 'no': unquoted, YAML reads no, yes, on and "
                                  "off as booleans)")
            if not re.fullmatch(NAME, name):
                what = "task name" if key == "tasks" else "language code"
                raise ConfigError(f"{where}: {key}: {name!r} is not a valid {what}: letters, digits, '-' and '_' "
                                  "only (it becomes part of the result paths); rename it")


# ---- the schema: the YAML file's layout, with madx's own dataclasses and enumerations filled in

_JSON_TYPES = {"bool": "boolean", "int": "integer", "float": "number", "str": "string"}


def field_schema(f: dataclasses.Field, bounded: bool = False) -> dict:
    """The JSON schema of one settings field, from its annotation and metadata (help, choices); `bounded`: with the
    training settings' bounds (AT_LEAST, POSITIVE), which are theirs alone."""
    annotation = str(f.type)
    if f.name == "compile":
        out = {"oneOf": [{"type": "boolean"}, {"enum": list(f.metadata["choices"])}]}
    elif "choices" in f.metadata:
        out = {"enum": list(f.metadata["choices"])}
    elif annotation.startswith("tuple"):
        out = {"type": "array", "items": {"type": "integer", "minimum": 0}}
    else:
        out = {"type": _JSON_TYPES[field_type(f)]}
    if bounded and f.name in AT_LEAST:  # the bounds the settings classes check (madx/core/settings.py): both refuse the same
        out["minimum"] = AT_LEAST[f.name]
    if bounded and f.name in POSITIVE:
        out["exclusiveMinimum"] = 0
    if "help" in f.metadata:
        out["description"] = f.metadata["help"]
    return out


def dataclass_schema(cls, skip=()) -> dict:
    bounded = issubclass(cls, TrainSettings)  # the demo's shape and sizes check their own (_check_demo_shape, DemoData)
    return {"type": "object", "additionalProperties": False,
            "properties": {f.name: field_schema(f, bounded) for f in dataclasses.fields(cls)
                           if f.init and f.name not in skip}}


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
    embeddings = schema["properties"]["languages"]["additionalProperties"]["properties"]["embeddings"]["properties"]
    embeddings["vocab_size"]["minimum"] = AT_LEAST["vocab_size"]
    embeddings["lr"]["exclusiveMinimum"] = 0  # embedding_lr: POSITIVE
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
    if err.validator in ("minimum", "exclusiveMinimum"):  # the settings' own words for their bounds
        problem = bound_message(str(err.absolute_path[-1]), err.instance) if err.absolute_path else None
        raise ConfigError(f"{where}: {key}: {err.instance} {problem or err.message.split(' ', 1)[1]}")
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
        return str(corpus_path(self.demo_data(), lang))  # the layout madx/demo/data.py writes

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
        return merged(lang_training_layers(self.config, lang))

    def task_training(self, task: str, setup: str) -> dict:
        """The train_task keys the config sets for `task` under `setup`: the global `train_task`, the task's own
        (`tasks.<task>.train_task`), then for full_ft the `full_ft` overrides."""
        return merged(task_training_layers(self.config, task, setup))

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
        return sorted({(SETUPS[setup].adapter_kind, lang) for _, _, lang, setup, _ in self.eval_targets()
                       if SETUPS[setup].new_script})

    def task_dir(self, task: str, source: str, setup: str, seed) -> str:
        """The task training `setup` evaluates (source_la uses madx's)."""
        return self.paths.task(task, source, SETUPS[setup].training.name, seed)

    def init_from_dir(self, task: str, source: str, setup: str, seed) -> str | None:
        """Two-stage training: the output of the task `task` starts from (same source, setup and seed), or None."""
        first = self.tasks[task]["init_from"]
        return self.task_dir(first, source, setup, seed) if first else None

    def task_data(self, task: str, split: str, lang: str) -> str:
        return self.tasks[task][split].replace("{lang}", lang)

    def train_lang_adapter(self, setup: str, source: str) -> str | None:
        """The language adapter a setup's task adapter is trained on (the source's), or None."""
        return self.lang_adapter_dir(source) if SETUPS[setup].training.on_source_adapter else None

    def eval_lang_adapter(self, setup: str, source: str, lang: str) -> str | None:
        if SETUPS[setup].new_script:
            return self.paths.script_adapter(SETUPS[setup].adapter_kind, lang)
        adapter_lang = SETUPS[setup].lang_adapter_for(source, lang)
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
            if SETUPS[setup].training.on_source_adapter:
                needed |= set(self.sources)
            if not SETUPS[setup].new_script:  # the new-script setups stack their own adapters (script_adapters)
                needed |= {SETUPS[setup].lang_adapter_for(source, lang) for spec in self.tasks.values()
                           for source in self.sources for lang in spec["languages"]} - {None}
        return sorted(needed)

    def adapter_only_languages(self) -> list:
        """Languages with a corpus that no task evaluates (nor trains on): their language adapter is trained and its
        held-out perplexity reported, ready for a task that comes later."""
        in_tasks = set(self.sources) | {lang for spec in self.tasks.values() for lang in spec["languages"]}
        return [lang for lang, entry in self.languages.items()
                if lang not in in_tasks and entry["corpus"] and not entry["adapter"]]

    def lang_adapters_to_train(self) -> list:
        needed = [lang for lang in self.lang_adapters_needed() if not self.languages[lang]["adapter"]]
        return sorted({*needed, *self.adapter_only_languages()})

    def lang_adapter_outputs(self) -> list[str]:
        """Every language adapter the workflow trains: the plain ones, then the new-script ones."""
        return ([self.paths.lang_adapter(lang) for lang in self.lang_adapters_to_train()]
                + [self.paths.script_adapter(kind, lang) for kind, lang in self.script_adapters()])

    def task_outputs(self) -> list[str]:
        """Every task adapter (or fine-tuned model) some evaluation uses."""
        return list(dict.fromkeys(self.task_dir(task, source, setup, seed)
                                  for task, source, _, setup, seed in self.eval_targets()))

    def demo_outputs(self) -> set[str]:
        """The files the demo writes (none without a demo)."""
        if self.demo is None:
            return set()
        out = {self.paths.demo_readme()}
        for lang in self.demo.languages:
            out.add(self.paths.demo_corpus(lang.code))
            out |= {self.paths.demo_task_file(lang.code, split, kind) for split in SPLITS for kind in DEMO_TASKS}
        return {os.path.normpath(p) for p in out}


def lang_training_layers(config: dict, lang: str) -> list[tuple[str, dict]]:
    """(key path, keys set there) of the sections that make `lang`'s train_lang settings, later over earlier."""
    entry = (config.get("languages") or {}).get(lang) or {}
    layers = [("train_lang", config.get("train_lang", {})), (f"languages.{lang}.train_lang", entry.get("train_lang", {}))]
    return layers + ([(f"languages.{lang}", {"max_tokens": entry["max_tokens"]})] if entry.get("max_tokens") else [])


def task_training_layers(config: dict, task: str, setup: str) -> list[tuple[str, dict]]:
    """(key path, keys set there) of the sections that make `task`'s train_task settings under `setup`."""
    layers = [("train_task", config.get("train_task", {})),
              (f"tasks.{task}.train_task", config["tasks"][task].get("train_task", {}))]
    return layers + ([("full_ft", config.get("full_ft", {}))] if TRAININGS[setup].full_model else [])


def merged(layers: list[tuple[str, dict]]) -> dict:
    return {key: value for _, section in layers for key, value in section.items()}


def written_at(layers: list[tuple[str, dict]], name: str) -> str:
    """The key path where the value of setting `name` was written (the last section setting it), or where it would go
    (the first section's) with '(default)'."""
    for path, section in reversed(layers):
        if name in section:
            return f"{path}.{name}"
    return f"{layers[0][0]}.{name} (default)"


# ---- checks


def _check_settings(cls, layers: list[tuple[str, dict]], where: str) -> None:
    """`cls` built from the merged sections; an error names the key path where each offending value was written."""
    try:
        cls(**merged(layers))
    except SettingError as err:
        keys = " and ".join(written_at(layers, key) for key in err.keys)
        raise ConfigError(f"{where}: {keys}: {err.after_key}") from None
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where}: {layers[-1][0]}: {err}") from None


def _check_section(config: dict, key: str, where: str, cls, **extra) -> None:
    values = {k: tuple(v) if k == "leave_out" else v for k, v in config.get(key, {}).items()}
    try:
        cls(**values, **extra)
    except (AdapterConfigError, ValueError, TypeError) as err:
        raise ConfigError(f"{where}: {key}: {err}") from None


def _check_local(spec: str, key: str, where: str, made: set[str], hint: str = "") -> None:
    if spec.startswith("hub:"):  # a hub dataset, or a local dataset directory given as one
        dataset = spec[len("hub:"):].partition("?")[0]
        if looks_like_a_path(dataset) and not Path(dataset).exists():
            raise ConfigError(f"{where}: {key}: local dataset directory {dataset!r} not found{hint}; fix the path, "
                              "or give the dataset's hub id (namespace/name)")
        return
    if os.path.normpath(spec) in made:
        return
    path = Path(spec)
    if not path.exists():
        if made and Path(spec).parent.as_posix() in {Path(p).parent.as_posix() for p in made}:
            hint += " (the demo makes files there only for its languages: add the language to demo.languages)"
        raise ConfigError(f"{where}: {key}: file {spec!r} not found{hint}; fix the path or use a hub source "
                          "({hub: ID})")
    if path.is_file() and path.stat().st_size == 0:
        raise ConfigError(f"{where}: {key}: file {spec!r} is empty")


def _check_ready_adapter(path: str, base_model: str, key: str, where: str) -> None:
    """A ready language adapter: a readable AdapterHub config, a weights file, and (when the base model is a
    local directory already) the base model's hidden size and model type. The weights load at job time."""
    if not Path(path).is_dir():  # before importing the adapter reader (and torch)
        raise ConfigError(f"{where}: {key}: adapter directory {path!r} not found; fix the path, or give the language a "
                          "corpus instead to train its adapter")
    from ..adapters.io import (CONFIG_NAME, LEGACY_WEIGHTS_NAME, WEIGHTS_NAME, AdapterLoadError, made_for_mismatch,
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
    mismatch = made_for_mismatch(meta, _base_model_config(base_model, where))
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
    _check_settings(PretrainSettings, [("demo.pretrain", demo.get("pretrain", {}))], where)
    _check_demo_shape(built[TinyEncoder], where)
    return Demo(data=built[DemoData], shape=built[TinyEncoder], pretrain=dict(demo.get("pretrain", {})),
                languages=tuple(parsed))


# The demo base model's shape: the smallest value of each field that builds a model (the schema leaves them to
# _check_demo_shape), and why where it is not plain
DEMO_SHAPE_AT_LEAST = {"vocab_size": 1, "hidden_size": 1, "num_hidden_layers": 1, "num_attention_heads": 1,
                       "intermediate_size": 1, "max_seq_len": AT_LEAST["seq_len"]}
DEMO_SHAPE_WHY = {"max_seq_len": WHY["seq_len"]}


def _check_demo_shape(shape: TinyEncoder, where: str) -> None:
    """The demo base model's shape builds a model (checked here: the model is built by a job)."""
    for name, minimum in DEMO_SHAPE_AT_LEAST.items():
        if getattr(shape, name) < minimum:
            why = f" ({DEMO_SHAPE_WHY[name]})" if name in DEMO_SHAPE_WHY else ""
            raise ConfigError(f"{where}: demo.{name}: {getattr(shape, name)} must be at least {minimum}{why}")
    if shape.hidden_size % shape.num_attention_heads:
        raise ConfigError(f"{where}: demo.hidden_size: {shape.hidden_size} is not a multiple of "
                          f"demo.num_attention_heads ({shape.num_attention_heads}); each head gets hidden_size / heads")
    if not 0 <= shape.dropout < 1:
        raise ConfigError(f"{where}: demo.dropout: {shape.dropout} must be in [0, 1)")


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
            raise ConfigError(f"{where}: languages.{lang}: max_tokens is given twice (languages.{lang}.max_tokens and "
                              f"languages.{lang}.train_lang.max_tokens); keep one")
        _check_settings(LangTraining, lang_training_layers(config, lang), where)
        languages[lang] = {"corpus": specs, "adapter": entry.get("adapter"), "max_tokens": entry.get("max_tokens"),
                           "train_lang": own, "setups": list(entry.get("setups", [])),
                           "romanize": entry.get("romanize"), "embeddings": dict(entry.get("embeddings") or {})}
    return languages


def _check_new_scripts(exp: "Experiment") -> None:
    """A language that runs a new-script setup has what it needs: a corpus, a romanizer for madx_translit (one
    that is installed), and no new-script keys it would ignore."""
    from ..data.romanize import RomanizerError, check_installed

    where = exp.where
    for lang, entry in exp.languages.items():
        runs = set()
        for spec in exp.tasks.values():
            if lang in spec["languages"]:
                runs |= set(exp.setups_for(lang)) & set(NEW_SCRIPT_SETUPS)
        if runs and not entry["corpus"]:
            raise ConfigError(f"{where}: languages.{lang}: {', '.join(sorted(runs))} train their own language adapter "
                              "and need the language's corpus: give corpus")
        romanizing = sorted(name for name in runs if SETUPS[name].romanizes)
        if romanizing and not entry["romanize"]:
            raise ConfigError(f"{where}: languages.{lang}.romanize: {', '.join(romanizing)} needs a romanizer for "
                              f"{lang} ({', '.join(ROMANIZERS)})")
        if entry["embeddings"] and not any(SETUPS[name].new_embeddings for name in runs):
            embedding = ", ".join(name for name, s in SETUPS.items() if s.new_embeddings)
            raise ConfigError(f"{where}: languages.{lang}.embeddings: set, but {lang} runs no {embedding}; add it to "
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
    _check_names(config, where)
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
                       "init_from": entry.get("init_from"), "all_languages": entry.get("languages", "all") == "all",
                       **{split: source_spec(entry[split]) for split in SPLITS}}
        for setup in TRAININGS:  # full_ft: the full_ft overrides on top
            _check_settings(TaskTraining, task_training_layers(config, task, setup), where)
    _check_init_from(config, where)
    for key in ("lang_adapter", "task_adapter"):
        _check_section(config, key, where, AdapterConfig)
    exp = Experiment(config=config, where=where, languages=languages, tasks=tasks, sources=sources, demo=demo)
    _check_new_scripts(exp)
    if check_files:
        _check_files(exp)
    _check_lengths(exp)
    return exp


def position_limit(exp: Experiment) -> tuple[int, str] | None:
    """(longest input in tokens, what says so) of the base model, when known before any job: the demo's shape, or
    a local model directory's config.json; None for a hub id (the jobs check it)."""
    if exp.builds_base_model:
        return exp.demo.shape.max_seq_len, "demo.max_seq_len"
    config_file = Path(exp.base_model) / "config.json"
    if not config_file.is_file():
        return None
    config = _base_model_config(exp.base_model, exp.where)
    if "max_position_embeddings" not in config:
        return None
    return max_sequence_length(SimpleNamespace(**{"pad_token_id": None, "model_type": None, **config})), str(config_file)


def _base_model_config(base_model: str, where: str) -> dict:
    """A local base model directory's config.json; a corrupt one is a ConfigError naming it."""
    try:
        return read_model_config(base_model)
    except ModelLoadError as err:
        raise ConfigError(f"{where}: {err}") from None


def _check_lengths(exp: Experiment) -> None:
    """Every language adapter's seq_len and every task training's max_length fit the base model's positions."""
    limit = position_limit(exp)
    if limit is None:
        return
    limit, source = limit
    checks = [(lang_training_layers(exp.config, lang), "seq_len", LangTraining) for lang in exp.lang_adapters_to_train()]
    trained = dict.fromkeys(SETUPS[setup].training.name for _, _, _, setup, _ in exp.eval_targets())
    checks += [(task_training_layers(exp.config, task, setup), "max_length", TaskTraining) for task in exp.tasks
               for setup in trained]
    for layers, name, cls in checks:
        value = merged(layers).get(name, getattr(cls(), name))
        if value > limit:
            raise ConfigError(f"{exp.where}: {written_at(layers, name)}: {value} is beyond the base model's position "
                              f"limit of {limit} tokens ({source}); set it to at most {limit}")


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
    if not exp.builds_base_model and looks_like_a_path(exp.base_model):  # a hub id is checked when a job loads it
        try:
            check_base_model_dir(exp.base_model)
        except ModelLoadError as err:
            raise ConfigError(f"{exp.where}: {err}") from None
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
                hint = (f" (tasks.{task}.languages is all; to leave {lang} out of {task}, list the task's "
                        "languages instead)"
                        if split == "test" and spec["all_languages"] and lang not in exp.sources else "")
                _check_local(exp.task_data(task, split, lang), f"tasks.{task}.{split} ({lang})", exp.where, made, hint)


def load_experiment_file(path: str | Path, **kwargs) -> Experiment:
    return load_experiment(load_yaml(path), str(path), **kwargs)
