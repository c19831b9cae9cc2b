"""The experiment config the workflow runs: schema check, then meaning checks, each error naming its key.

Everything here runs before Snakemake builds the DAG, so a typo costs seconds, not a GPU day.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import yaml

from .config import AdapterConfig, AdapterConfigError
from .setups import EVAL_SETUPS, TRAINED_BY

SCHEMA = Path(__file__).resolve().parent.parent / "workflows" / "schemas" / "config.schema.yaml"
DEFAULT_SETUPS = list(EVAL_SETUPS)


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


def _schema_errors(config: dict, where: str) -> None:
    import jsonschema

    schema = yaml.safe_load(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
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
    if err.validator == "required":
        raise ConfigError(f"{where}: {key}: {err.message}")
    raise ConfigError(f"{where}: {key}: {err.message}")


def source_spec(value, key: str, where: str) -> str:
    """A config data source (path string or {hub: ...} mapping) as a madx source string."""
    if isinstance(value, str):
        return value
    options = {k: value[k] for k in ("config", "split", "column", "revision") if k in value}
    return f"hub:{value['hub']}" + (f"?{urlencode(options, safe='{}')}" if options else "")


@dataclass(frozen=True)
class Experiment:
    config: dict
    where: str
    languages: dict = field(default_factory=dict)  # lang -> {"corpus": [spec], "adapter": path|None, ...}
    tasks: dict = field(default_factory=dict)  # task -> {"type", "train", "dev", "test", "languages"}

    @property
    def results(self) -> str:
        return self.config.get("results", "results")

    @property
    def source_language(self) -> str:
        return self.config["source_language"]

    @property
    def seeds(self) -> list:
        return self.config.get("seeds", [1])

    @property
    def setups(self) -> list:
        return self.config.get("setups", DEFAULT_SETUPS)

    @property
    def demo(self) -> dict | None:
        return self.config.get("demo")

    def lang_adapter_dir(self, lang: str) -> str:
        return self.languages[lang]["adapter"] or f"{self.results}/adapters/lang/{lang}"

    def trained_setups(self) -> list:
        return sorted({TRAINED_BY[s] for s in self.setups})

    def eval_targets(self) -> list:
        """(task, lang, setup, seed) of every evaluation the experiment runs."""
        return [(task, lang, setup, seed) for task, spec in self.tasks.items() for lang in spec["languages"]
                for setup in self.setups for seed in self.seeds]

    def lang_adapters_to_train(self) -> list:
        needed = {self.source_language} if {"madx", "source_la"} & set(self.setups) else set()
        if "madx" in self.setups:
            needed |= {lang for spec in self.tasks.values() for lang in spec["languages"]}
        return sorted(lang for lang in needed if not self.languages[lang]["adapter"])


def _check_adapter_section(config: dict, key: str, where: str) -> None:
    try:
        AdapterConfig(**{k: tuple(v) if k == "leave_out" else v for k, v in config.get(key, {}).items()})
    except AdapterConfigError as err:
        raise ConfigError(f"{where}: {key}: {err}") from None


def _produced_by_workflow(path: str, config: dict) -> bool:
    """Files the workflow itself makes (the demo's data) need not exist before it runs."""
    results = config.get("results", "results")
    return config.get("demo") is not None and Path(path).parts[:2] == (results, "demo")


def _check_local(spec: str, key: str, where: str, config: dict) -> None:
    if spec.startswith("hub:") or _produced_by_workflow(spec, config):
        return
    path = Path(spec)
    if not path.exists():
        raise ConfigError(f"{where}: {key}: file {spec!r} not found; fix the path or use a hub source ({{hub: ID}})")
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


def load_experiment(config: dict, where: str = "config", *, check_files: bool = True) -> Experiment:
    _schema_errors(config, where)
    source = config["source_language"]
    languages = {}
    for lang, entry in config["languages"].items():
        corpus = entry.get("corpus")
        corpus = corpus if isinstance(corpus, list) else [corpus] if corpus is not None else []
        specs = [source_spec(c, f"languages.{lang}.corpus", where) for c in corpus]
        if not specs and not entry.get("adapter"):
            raise ConfigError(f"{where}: languages.{lang}: needs a corpus (to train its language adapter) or "
                              "adapter: a ready language adapter directory")
        if check_files:
            for spec in specs:
                _check_local(spec, f"languages.{lang}.corpus", where, config)
            if entry.get("adapter"):
                _check_ready_adapter(entry["adapter"], config["base_model"], f"languages.{lang}.adapter", where)
        languages[lang] = {"corpus": specs, "adapter": entry.get("adapter"), "max_tokens": entry.get("max_tokens")}
    if source not in languages:
        raise ConfigError(f"{where}: source_language: {source!r} is not among languages ({', '.join(languages)})")
    tasks = {}
    for task, entry in config["tasks"].items():
        targets = list(languages) if entry.get("languages", "all") == "all" else entry["languages"]
        unknown = [lang for lang in targets if lang not in languages]
        if unknown:
            raise ConfigError(f"{where}: tasks.{task}.languages: {unknown} not under languages; add an entry "
                              "for each (a corpus or an adapter)")
        spec = {"type": entry["type"], "languages": targets}
        for split in ("train", "dev", "test"):
            spec[split] = source_spec(entry[split], f"tasks.{task}.{split}", where)
        if check_files:
            for split, langs in (("train", [source]), ("dev", [source]), ("test", targets)):
                for lang in langs:
                    _check_local(spec[split].replace("{lang}", lang), f"tasks.{task}.{split} ({lang})", where, config)
        tasks[task] = spec
    for key in ("lang_adapter", "task_adapter"):
        _check_adapter_section(config, key, where)
    return Experiment(config=config, where=where, languages=languages, tasks=tasks)


def load_experiment_file(path: str | Path, **kwargs) -> Experiment:
    return load_experiment(load_yaml(path), str(path), **kwargs)
