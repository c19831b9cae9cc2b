"""The config file as the workflow reads it: YAML without duplicate keys, names fit for paths, and the JSON schema
(config.schema.yaml beside this file, with madx's own dataclasses and enumerations filled in), each error naming
the file and the key."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import yaml

from ..adapters.config import AdapterConfig
from ..adapters.kadapter import KAdapterConfig
from ..core.errors import MadxError
from ..core.settings import (AT_LEAST, EMBEDDING_KEYS, EMBEDDING_MODES, MIXED_PRECISION, POSITIVE, ROMANIZERS,
                             SCRIPT_KEYS, EmeaSettings, KnowledgeTraining, LangTraining, PretrainSettings,
                             TaskTraining, TrainSettings, bound_message, field_type)
from ..core.setups import EVAL_SETUPS, NEW_SCRIPT_SETUPS, RELATED_SETUPS
from ..demo.data import DemoData, DemoLanguage, TinyEncoder
from ..tasks.families import TASK_TYPES

FULL_FT_SECTION = "full_ft"  # the config section of full fine-tuning's overrides of train_task
SCHEMA = Path(__file__).resolve().parent / "config.schema.yaml"
# Config sections checked against a dataclass: (section, dataclass, fields that come from elsewhere in the config)
SECTIONS = {
    "lang_adapter": (AdapterConfig, ()),
    "task_adapter": (AdapterConfig, ()),
    # compute.mixed_precision; the new-script keys come from languages.<lang> (romanize, embeddings)
    "train_lang": (LangTraining, ("mixed_precision", "eval_every", *SCRIPT_KEYS)),
    "train_task": (TaskTraining, ("mixed_precision", "seed")),  # seeds: one task training per seed
    FULL_FT_SECTION: (TaskTraining, ("mixed_precision", "seed")),
    "emea": (EmeaSettings, ()),
}
PRETRAIN_SKIP = ("mixed_precision", "eval_every")
# A language code or task name: part of every result path and a Snakemake wildcard (workflows/common.smk)
NAME = r"[A-Za-z0-9_\-]+"


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


def check_names(config: dict, where: str) -> None:
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
    if f.metadata.get("switch"):  # true/false, or a mode
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
    bounded = issubclass(cls, (TrainSettings, KnowledgeTraining))  # the demo's shape and sizes check their own (check_demo_shape, DemoData)
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
    defs["emea"] = dataclass_schema(*SECTIONS["emea"])
    defs["kadapter"] = dataclass_schema(KAdapterConfig)
    defs["knowledge_training"] = dataclass_schema(KnowledgeTraining)
    defs["pretraining"] = dataclass_schema(PretrainSettings, PRETRAIN_SKIP)
    defs["demo_language"] = dataclass_schema(DemoLanguage, ("code",))
    defs["task_type"] = {"enum": list(TASK_TYPES)}
    defs["setup"] = {"enum": list(EVAL_SETUPS)}
    defs["language_setup"] = {"enum": [*NEW_SCRIPT_SETUPS, *RELATED_SETUPS]}
    defs["romanizer"] = {"enum": list(ROMANIZERS)}
    defs["mixed_precision"] = {"enum": list(MIXED_PRECISION)}
    embeddings = schema["properties"]["languages"]["additionalProperties"]["properties"]["embeddings"]
    lang_fields = {f.name: f for f in dataclasses.fields(LangTraining)}
    embeddings["properties"] = {key: field_schema(lang_fields[name], bounded=True)
                                for key, name in EMBEDDING_KEYS.items()}
    embeddings["properties"]["mode"]["enum"] = list(EMBEDDING_MODES)  # "" (no embeddings) is not a mode
    demo = schema["properties"]["demo"]["properties"]
    for cls in (DemoData, TinyEncoder):
        demo.update(dataclass_schema(cls)["properties"])
    return schema


def check_schema(config: dict, where: str) -> None:
    """The config against config_schema(); the first error (the shallowest key) names its key."""
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
