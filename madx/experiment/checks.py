"""The meaning checks the schema cannot make: settings that build, files that exist, adapters made for this base
model, lengths within its positions, two-stage training without cycles. Each error names the config file and key."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Mapping

from ..adapters.config import AdapterConfigError
from ..core.files import LANG_RECORD, TASK_RECORD, ChecksumError, remembered_digests, verify_checksums
from ..core.settings import AT_LEAST, ROMANIZERS, WHY, LangTraining, SettingError, TaskTraining
from ..core.setups import FUSION_SETUPS, NEW_SCRIPT_SETUPS, RELATED_SETUPS, SETUPS
from ..core.sources import Source, hub_dataset, is_hub_spec, looks_like_a_path
from ..data.hub import ModelLoadError, check_base_model_dir, check_hub_model, max_sequence_length, read_model_config
from .layers import Layers, merged, written_at
from .schema import ConfigError

if TYPE_CHECKING:
    from ..demo.data import TinyEncoder
    from .config import Language, Task
    from .plan import Experiment

# The demo base model's shape: the smallest value of each field that builds a model (the schema leaves them to
# check_demo_shape), and why where it is not plain
DEMO_SHAPE_AT_LEAST = {"vocab_size": 1, "hidden_size": 1, "num_hidden_layers": 1, "num_attention_heads": 1,
                       "intermediate_size": 1, "max_seq_len": AT_LEAST["seq_len"]}
DEMO_SHAPE_WHY = {"max_seq_len": WHY["seq_len"]}


def check_settings(cls, layers: Layers, where: str) -> None:
    """`cls` built from the merged sections; an error names the key path where each offending value was written."""
    try:
        cls(**merged(layers))
    except SettingError as err:
        keys = " and ".join(written_at(layers, key) for key in err.keys)
        raise ConfigError(f"{where}: {keys}: {err.after_key}") from None
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where}: {layers[-1][0]}: {err}") from None


def check_section(section: Mapping, key: str, where: str, cls) -> None:
    """A config section (`key`) builds `cls` (an adapter config)."""
    try:
        cls(**section)
    except (AdapterConfigError, ValueError, TypeError) as err:
        raise ConfigError(f"{where}: {key}: {err}") from None


def check_demo_shape(shape: TinyEncoder, where: str) -> None:
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


def check_init_from(tasks: Mapping[str, Task], where: str) -> None:
    """tasks.<task>.init_from names another task of the same type, and following them never comes back."""
    for name, task in tasks.items():
        seen, current = [name], task.init_from
        while current is not None:
            if current not in tasks:
                raise ConfigError(f"{where}: tasks.{name}.init_from: {current!r} is not a task here ({', '.join(tasks)})")
            if tasks[current].type != task.type:
                raise ConfigError(f"{where}: tasks.{name}.init_from: {current!r} is a {tasks[current].type} task, "
                                  f"{name!r} a {task.type} one; a task starts only from one of its own type")
            if current in seen:
                raise ConfigError(f"{where}: tasks.{name}.init_from: a cycle ({' -> '.join(seen + [current])})")
            seen.append(current)
            current = tasks[current].init_from


def check_not_listed(asked: tuple, setups: tuple, tasks: Mapping[str, Task], where: str, why: str) -> None:
    """Setups something else asks for (`asked`) are in neither the config's `setups` nor a task's own."""
    for key, listed in [("setups", setups), *((f"tasks.{n}.setups", t.setups) for n, t in tasks.items())]:
        if set(listed) & set(asked):
            raise ConfigError(f"{where}: {key}: {', '.join(asked)} {why}")


def check_fusions(tasks: Mapping[str, Task], setups: tuple, where: str) -> None:
    """tasks.<task>.fuse names other tasks of the experiment; madx_fusion is asked for by `fuse`, never listed. Tasks
    may fuse each other (the AdapterFusion paper's setup: every task fuses all the others): a fusion fuses the
    madx trainings of those tasks, never another fusion, so no job waits on itself."""
    check_not_listed(FUSION_SETUPS, setups, tasks, where, "runs for the tasks that fuse others; instead of listing "
                     "it, give the task `fuse: [<other task>, ...]`")
    for name, task in tasks.items():
        unknown = [other for other in task.fuse if other not in tasks]
        if unknown:
            raise ConfigError(f"{where}: tasks.{name}.fuse: {unknown} not a task here ({', '.join(tasks)}); fuse the "
                              "task adapters of this experiment's tasks")
        if name in task.fuse:
            raise ConfigError(f"{where}: tasks.{name}.fuse: {name!r} fuses itself; its own task adapter is always in "
                              "its fusion: list only the other tasks")


def check_related(languages: Mapping[str, Language], sources: tuple, setups: tuple, tasks: Mapping[str, Task],
                  where: str) -> None:
    """languages.<l>.related names other languages of the experiment that have adapters (a corpus, or a ready one),
    `k` is at most their number, the related setups are asked for by `related` (never listed in `setups`), and
    every source has an adapter of its own (the task adapters train on it)."""
    check_not_listed(RELATED_SETUPS, setups, tasks, where, "run for the languages that name related ones; instead of "
                     "listing them, give the language `related: [<language>, ...]` (nearest first)")
    for code, language in languages.items():
        listed = set(language.setups) & set(RELATED_SETUPS)
        if listed and not language.related:
            raise ConfigError(f"{where}: languages.{code}.setups: {', '.join(sorted(listed))} stacks the adapters of "
                              f"related languages: give languages.{code}.related (nearest first)")
        for other in language.related:
            if other == code:
                raise ConfigError(f"{where}: languages.{code}.related: {code!r} is the language itself; name the "
                                  "languages whose adapters stand in for its own")
            if other not in languages:
                raise ConfigError(f"{where}: languages.{code}.related: {other!r} is not a language here "
                                  f"({', '.join(languages)}); add it with a corpus (or a ready adapter)")
            if not languages[other].has_adapter:
                raise ConfigError(f"{where}: languages.{code}.related: {other!r} has no language adapter (no corpus, "
                                  f"no ready adapter); give languages.{other} a corpus or an adapter")
        new_script = sorted(set(language.setups) & set(NEW_SCRIPT_SETUPS))
        if new_script and not language.has_adapter:
            raise ConfigError(f"{where}: languages.{code}.setups: {', '.join(new_script)} trains {code}'s own language "
                              f"adapter from its corpus, and {code} has none; give it a corpus, or leave them out")
        if language.k is not None and language.k > len(language.related):
            raise ConfigError(f"{where}: languages.{code}.k: {language.k}, but related names {len(language.related)} "
                              "language(s); madx_avg and madx_emea average at most those")
    for source in sources:
        if not languages[source].has_adapter:
            raise ConfigError(f"{where}: languages.{source}: a source language with no corpus and no ready adapter; "
                              "the task adapters are trained on the source's language adapter: give it a corpus")


def check_target_ready(exp: Experiment) -> None:
    """Every task that runs madx_tlr has a language other than the source's to train over."""
    for task, source, lang, setup, _ in exp.eval_targets():
        if SETUPS[setup].training.target_ready and not exp.tlr_languages(task, source):
            raise ConfigError(f"{exp.where}: tasks.{task}: {setup} trains over the targets' language adapters in turn "
                              f"with the source's, and no target of {task} but {source} has one; give "
                              f"tasks.{task}.tlr_languages, or leave {setup} out")


def check_ready_tasks(exp: Experiment) -> None:
    """tasks.<t>.adapter names sources of the experiment; a task with ready adapters is neither fused nor a first
    stage (those train on madx's own task adapters); a task without train data trains nothing."""
    for name, task in exp.tasks.items():
        unknown = [source for source in task.adapters if source not in exp.sources]
        if unknown:
            raise ConfigError(f"{exp.where}: tasks.{name}.adapter.{unknown[0]}: not a source language of the "
                              f"experiment ({', '.join(exp.sources)}); a ready task adapter is given per source")
        users = [other for other, entry in exp.tasks.items() if name in entry.fuse or entry.init_from == name]
        if task.adapters and users:
            raise ConfigError(f"{exp.where}: tasks.{name}.adapter: tasks.{users[0]} fuses or starts from {name}'s "
                              f"madx task adapters, which a ready adapter replaces; train {name}'s (remove "
                              f"tasks.{name}.adapter) or leave it out of tasks.{users[0]}")
        if task.train is not None:
            continue
        trained = sorted({(setup, source) for t, source, _, setup, _ in exp.eval_targets()
                          if t == name and not exp.ready_task_adapter(name, source, setup)})
        if trained:
            runs = ", ".join(f"{setup} (from {source})" for setup, source in trained)
            raise ConfigError(f"{exp.where}: tasks.{name}.train: missing, and {runs} train a task adapter on it; a "
                              f"ready adapter stands in for madx's only (madx, source_la and the related-language "
                              f"setups): give train and dev, or set tasks.{name}.setups to those")


def check_new_scripts(exp: Experiment) -> None:
    """A language that runs a new-script setup has what it needs: a corpus, a romanizer for madx_translit (one
    that is installed), and no new-script keys it would ignore."""
    from ..data.romanize import RomanizerError, check_installed

    where = exp.where
    for lang, language in exp.languages.items():
        runs = set()
        for name, task in exp.tasks.items():
            if lang in task.languages:
                runs |= set(exp.setups_for(name, lang)) & set(NEW_SCRIPT_SETUPS)
        if runs and not language.corpus:
            raise ConfigError(f"{where}: languages.{lang}: {', '.join(sorted(runs))} train their own language adapter "
                              "and need the language's corpus: give corpus")
        embedding = sorted(name for name in runs if SETUPS[name].new_embeddings)
        if embedding and any(Source.parse(spec).streaming for spec in language.corpus):
            raise ConfigError(f"{where}: languages.{lang}.corpus: streamed, but {', '.join(embedding)} trains "
                              "embeddings on the whole corpus first; give a local file or a hub dataset without "
                              "streaming")
        romanizing = sorted(name for name in runs if SETUPS[name].romanizes)
        if romanizing and not language.romanize:
            raise ConfigError(f"{where}: languages.{lang}.romanize: {', '.join(romanizing)} needs a romanizer for "
                              f"{lang} ({', '.join(ROMANIZERS)})")
        if language.sets_embeddings and not any(SETUPS[name].new_embeddings for name in runs):
            embedding = ", ".join(name for name, s in SETUPS.items() if s.new_embeddings)
            raise ConfigError(f"{where}: languages.{lang}.embeddings: set, but {lang} runs no {embedding}; add it to "
                              f"languages.{lang}.setups (or remove embeddings)")
        if language.romanize:
            try:
                check_installed(language.romanize)
            except RomanizerError as err:
                raise ConfigError(f"{where}: languages.{lang}.romanize: {err}") from None


def position_limit(exp: Experiment) -> tuple[int, str] | None:
    """(longest input in tokens, what says so) of the base model, when known before any job: the demo's shape, or
    a local model directory's config.json; None for a hub id (the jobs check it)."""
    if exp.builds_base_model:
        return exp.demo.shape.max_seq_len, "demo.max_seq_len"
    config_file = Path(exp.base_model) / "config.json"
    if not config_file.is_file():
        return None
    config = base_model_config(exp.base_model, exp.where)
    if "max_position_embeddings" not in config:
        return None
    return max_sequence_length(SimpleNamespace(**{"pad_token_id": None, "model_type": None, **config})), str(config_file)


def base_model_config(base_model: str, where: str) -> dict:
    """A local base model directory's config.json; a corrupt one is a ConfigError naming it."""
    try:
        return read_model_config(base_model)
    except ModelLoadError as err:
        raise ConfigError(f"{where}: {err}") from None


def check_lengths(exp: Experiment) -> None:
    """Every language adapter's seq_len and every task training's max_length fit the base model's positions."""
    limit = position_limit(exp)
    if limit is None:
        return
    limit, source = limit
    checks = [(exp.lang_training_layers(lang), "seq_len", LangTraining) for lang in exp.lang_adapters_to_train()]
    trained = dict.fromkeys(SETUPS[setup].training.name for _, _, _, setup, _ in exp.eval_targets())
    checks += [(exp.task_training_layers(task, setup), "max_length", TaskTraining) for task in exp.tasks
               for setup in trained]
    for layers, name, cls in checks:
        value = merged(layers).get(name, getattr(cls(), name))
        if value > limit:
            raise ConfigError(f"{exp.where}: {written_at(layers, name)}: {value} is beyond the base model's position "
                              f"limit of {limit} tokens ({source}); set it to at most {limit}")


def check_base_model(exp: Experiment) -> list[str]:
    """The base model the jobs load: a local directory with its config and tokenizer, or a hub id that is cached or
    that the hub has (a typo fails here, not inside every job). Returns notes for the summary (a hub id the first
    job downloads, or one the hub could not be asked about)."""
    try:
        if exp.builds_base_model:
            return []
        if looks_like_a_path(exp.base_model):
            check_base_model_dir(exp.base_model)
            return []
        note = check_hub_model(exp.base_model)
    except ModelLoadError as err:
        raise ConfigError(f"{exp.where}: {err}") from None
    return [note] if note else []


def check_files(exp: Experiment) -> list[str]:
    """Every local file a job will read exists, or the workflow makes it: checked for exactly the languages,
    tasks and splits the experiment runs, so no configured result can silently never appear. Returns notes for the
    summary (ready adapters by hub id that could not be checked: not cached, the hub out of reach)."""
    notes = []
    made = exp.demo_outputs()
    for lang in sorted({*exp.lang_adapters_to_train(), *(lang for _, lang in exp.script_adapters())}):
        for spec in exp.languages[lang].corpus:
            check_local(spec, f"languages.{lang}.corpus", exp.where, made)
    for lang, language in exp.languages.items():
        if language.adapter:
            note = check_ready_adapter(language.adapter, exp.base_model, f"languages.{lang}.adapter", exp.where)
            notes += [note] if note else []
    for name, task in exp.tasks.items():
        for source, adapter in task.adapters.items():
            note = check_ready_adapter(adapter, exp.base_model, f"tasks.{name}.adapter.{source}", exp.where, "task")
            notes += [note] if note else []
        trains = exp.training_sources(name) if task.train is not None else []
        for split, langs in (("train", trains), ("dev", trains), ("test", task.languages)):
            for lang in langs:
                hint = (f" (tasks.{name}.languages is all; to leave {lang} out of {name}, list the task's "
                        "languages instead)"
                        if split == "test" and task.all_languages and lang not in exp.sources else "")
                check_local(task.data(split, lang), f"tasks.{name}.{split} ({lang})", exp.where, made, hint)
    for name, knowledge in exp.knowledge.items():
        for split in ("train", "dev"):
            for lang, spec in zip(knowledge.languages, knowledge.data(split)):
                check_local(spec, f"knowledge.{name}.{split} ({lang})", exp.where, made)
    return notes


def check_local(spec: str, key: str, where: str, made: set[str], hint: str = "") -> None:
    """A data source a job reads: a local file that exists and is not empty (or one the demo makes), or a hub
    dataset whose local directory, when it names one, exists."""
    if is_hub_spec(spec):  # a hub dataset, or a local dataset directory given as one
        dataset = hub_dataset(spec)
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


def check_ready_adapter(path: str, base_model: str, key: str, where: str, kind: str = "language") -> str | None:
    """A ready language (or task) adapter: a readable AdapterHub config, a weights file (a task adapter's head
    config too), and (when the base model is a local directory already) the base model's hidden size and model type.
    The weights load at job time. A hub id
    is resolved here (from the hub cache, else downloaded; HF_HUB_OFFLINE and not cached: an error saying how to get
    it; not cached and the hub out of reach: a note, the jobs fetch it)."""
    from ..adapters.hub import AdapterHubError, HubUnreachable, is_adapter_id, resolve_adapter

    if is_adapter_id(path):
        try:
            path = str(resolve_adapter(path)[0])
        except HubUnreachable as err:
            return f"{key}: {err}; its jobs fetch it (set HF_HUB_OFFLINE=1 to have this refused instead)"
        except AdapterHubError as err:
            raise ConfigError(f"{where}: {key}: {err}") from None
    if not Path(path).is_dir():  # before importing the adapter reader (and torch)
        instead = "give the language a corpus" if kind == "language" else "give the task train and dev data"
        raise ConfigError(f"{where}: {key}: adapter directory {path!r} not found; fix the path, give a hub id "
                          f"(org/name), or {instead} instead to train its adapter")
    from ..adapters.io import (CONFIG_NAME, LEGACY_WEIGHTS_NAME, WEIGHTS_NAME, AdapterLoadError, made_for_mismatch,
                               read_adapter_config)

    try:
        meta, _ = read_adapter_config(path)
    except AdapterLoadError as err:
        raise ConfigError(f"{where}: {key}: {err}") from None
    if not any((Path(path) / name).is_file() for name in (WEIGHTS_NAME, LEGACY_WEIGHTS_NAME)):
        raise ConfigError(f"{where}: {key}: {path!r} has {CONFIG_NAME} but no weights ({WEIGHTS_NAME} or "
                          f"{LEGACY_WEIGHTS_NAME}); copy the whole adapter directory")
    from ..adapters.heads import HEAD_CONFIG

    if kind == "task" and not (Path(path) / HEAD_CONFIG).is_file():
        raise ConfigError(f"{where}: {key}: {path!r} has no prediction head ({HEAD_CONFIG}); give a task adapter "
                          "saved with its head (AdapterHub: save_adapter(..., with_head=True))")
    base_config = Path(base_model) / "config.json"
    if not base_config.is_file():  # a hub id, or a base model the workflow builds: checked when the job loads it
        return None
    mismatch = made_for_mismatch(meta, base_model_config(base_model, where))
    if mismatch is not None:
        field_name, made_for, has = mismatch
        raise ConfigError(f"{where}: {key}: {path!r} was made for {field_name} {made_for!r}, base_model "
                          f"{base_model!r} has {has!r}; use a {kind} adapter trained on this base model")
    return None


DIGESTS_RECORD = ".madx_digests.json"  # under the results folder: check_outputs' digests of unchanged files


class OutputError(ConfigError):
    """Finished outputs the config cannot run on: damaged, or another experiment's."""


def check_outputs(exp: Experiment) -> None:
    """The finished outputs already under the results folder are this experiment's, and whole: each language and task
    adapter (or fine-tuned model) was trained on this base model (its training record says), and its files are the
    bytes madx wrote (its checksums). Checked before the DAG: a corrupt adapter is named before any job reads it, and
    another experiment's results folder is never retrained over. Each file is read once while it stays unchanged
    (the digests are remembered under the results folder: a fine-tuned model is GBs)."""
    outputs = [Path(p) for p in [*exp.lang_adapter_outputs(), *exp.task_outputs()] if Path(p).is_dir()]
    others = [(output, trained_on) for output in outputs
              if (trained_on := recorded_base_model(output)) is not None and not same_model(trained_on, exp.base_model)]
    if others:
        (output, trained_on), more = others[0], len(others) - 1
        also = f" (and {more} other output{'s' * (more > 1)} there)" if more else ""
        raise OutputError(f"{exp.where}: base_model {exp.base_model!r}: {output} was trained on base model "
                          f"{trained_on!r}{also}, so the results folder {exp.paths.results!r} holds another "
                          "experiment's outputs; give this config a folder of its own (results: results/<name>), or "
                          f"delete {output} to retrain it on this base model")
    with remembered_digests(Path(exp.paths.results) / DIGESTS_RECORD):
        for output in outputs:
            try:
                verify_checksums(output, remedy=f"delete {output} and run snakemake again to rebuild it (the "
                                                "evaluations that read it are computed again)")
            except ChecksumError as err:
                raise OutputError(f"{exp.where}: a finished output is damaged: {err}") from None


def recorded_base_model(output: Path) -> str | None:
    """The base model a finished output's training record names (None: no record, or an older one without it)."""
    for name in (LANG_RECORD, TASK_RECORD):
        try:
            record = json.loads((output / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get("base_model"), str):
            return record["base_model"]
    return None


def same_model(a: str, b: str) -> bool:
    """Two base model names that mean the same model: equal, or paths of the same local directory."""
    if os.path.normpath(a) == os.path.normpath(b):
        return True
    return Path(a).is_dir() and Path(b).is_dir() and Path(a).resolve() == Path(b).resolve()
