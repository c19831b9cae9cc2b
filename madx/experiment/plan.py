"""The plan of the experiment: which jobs run, what each reads and writes, and the config loaded into it.

Everything here runs before Snakemake builds the DAG, so a typo costs seconds, not a GPU day. The config is
parsed once (config.py: a frozen Config, every default applied there) into the Experiment below, a Config that
plans: it owns every path (`Paths`) and every input of the workflow; the .smk files ask it, and never read the
raw config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from ..core.settings import EmeaSettings
from ..core.setups import FUSION_SETUPS, MADX, RELATED_SETUPS, SETUPS, script_setup
from ..demo.data import DEMO_TASKS, SPLITS
from . import checks
from .config import Config, load_config
from .layers import Layers, merged
from .schema import load_yaml


@dataclass(frozen=True)
class Experiment(Config):
    """The parsed config (config.py: every default applied there) and the jobs it makes; `notes`: what the checks
    found worth saying but not refusing (a hub id the first job downloads)."""

    notes: tuple[str, ...] = ()

    @property
    def builds_base_model(self) -> bool:
        """The demo builds its base model when the config points at where it goes."""
        return self.demo is not None and self.base_model == self.paths.demo_base_model()

    # ---- settings

    def lang_training_layers(self, lang: str) -> Layers:
        return self.sections.lang_layers(self.languages[lang])

    def task_training_layers(self, task: str, setup: str) -> Layers:
        return self.sections.task_layers(self.tasks[task], setup)

    def lang_training(self, lang: str) -> dict:
        """The train_lang keys the config sets for `lang`'s language adapter: the global `train_lang`, then the
        language's own (`languages.<lang>.train_lang`, e.g. fewer steps for a small corpus)."""
        return merged(self.lang_training_layers(lang))

    def emea_settings(self) -> EmeaSettings:
        """madx_emea's test-time steps: the config's `emea` keys over the defaults."""
        return EmeaSettings(**self.sections.emea)

    def task_training(self, task: str, setup: str) -> dict:
        """The train_task keys the config sets for `task` under `setup`: the global `train_task`, the task's own
        (`tasks.<task>.train_task`), then for full_ft the `full_ft` overrides."""
        return merged(self.task_training_layers(task, setup))

    def script_training(self, kind: str, lang: str) -> dict:
        """The train-lang keys of `lang`'s adapter for a new-script setup: its own train_lang keys, and the
        romanizer (translit) or the embeddings (emb, matched to the base through the romanizer when it has one)."""
        language = self.languages[lang]
        if script_setup(kind).romanizes:
            return {**self.lang_training(lang), "romanize": language.romanize}
        matched = {"match_romanized": language.romanize} if language.romanize else {}
        return {**self.lang_training(lang), **language.embeddings.train_lang_keys(), **matched}

    # ---- what each job reads

    def lang_adapter_dir(self, lang: str) -> str:
        return self.languages[lang].adapter or self.paths.lang_adapter(lang)

    def setups_for(self, task: str, lang: str) -> list:
        """The setups `task` is evaluated under on `lang` as a target: the task's own `setups` (else the config's),
        the language's own new-script ones, madx_fusion where the task fuses others, and madx_nearest, madx_avg and
        madx_emea where the language names related ones; for a language with no adapter of its own, none that stacks
        it."""
        own, language = self.tasks[task], self.languages[lang]
        setups = dict.fromkeys([*(own.setups or self.setups), *language.setups, *(FUSION_SETUPS if own.fuse else ()),
                                *(RELATED_SETUPS if language.related else ())])
        return [name for name in setups if language.has_adapter or not SETUPS[name].stacks_target]

    def task_dir(self, task: str, source: str, setup: str, seed) -> str:
        """The task training `setup` evaluates (source_la uses madx's), or the ready adapter standing in for it."""
        ready = self.ready_task_adapter(task, source, setup)
        return ready or self.paths.task(task, source, SETUPS[setup].training.name, seed)

    def ready_task_adapter(self, task: str, source: str, setup: str) -> str | None:
        """tasks.<task>.adapter.<source>: the ready task adapter (a directory or hub id) that the setups evaluating
        madx's task adapter read instead of a training of their own; None where madx trains it."""
        return self.tasks[task].adapters.get(source) if SETUPS[setup].training is MADX else None

    def training_sources(self, task: str) -> list[str]:
        """The sources `task`'s adapters are trained from: all but those whose every run reads a ready adapter (and
        all, when another task fuses or starts from it)."""
        if any(task in other.fuse or other.init_from == task for other in self.tasks.values()):
            return list(self.sources)
        return list(dict.fromkeys(source for name, source, _, setup, _ in self.eval_targets()
                                  if name == task and not self.ready_task_adapter(task, source, setup)))

    def init_from_dir(self, task: str, source: str, setup: str, seed) -> str | None:
        """Two-stage training: the output of the task `task` starts from (same source, setup and seed), or None."""
        first = self.tasks[task].init_from
        return self.task_dir(first, source, setup, seed) if first and not SETUPS[setup].training.fusion else None

    def fused_task_dirs(self, task: str, source: str, setup: str, seed) -> list[str]:
        """madx_fusion: the madx trainings whose task adapters it fuses, the task's own first; [] for other setups."""
        fused = SETUPS[setup].training.fuses
        return [self.paths.task(name, source, fused, seed) for name in (task, *self.tasks[task].fuse)] if fused else []

    def tlr_languages(self, task: str, source: str) -> list[str]:
        """madx_tlr: the languages whose adapters `task`'s adapter is trained over in turn with the source's: its
        tlr_languages, else every target of the task with an adapter (the source aside)."""
        given = self.tasks[task].tlr_languages
        targets = given if given is not None else self.tasks[task].languages
        return [lang for lang in targets if lang != source and self.languages[lang].has_adapter]

    def tlr_adapter_dirs(self, task: str, source: str, setup: str) -> list[str]:
        """The targets' language adapters a madx_tlr training reads ([] for every other setup)."""
        if not SETUPS[setup].training.target_ready:
            return []
        return [self.lang_adapter_dir(lang) for lang in self.tlr_languages(task, source)]

    def task_data(self, task: str, split: str, lang: str) -> str:
        return self.tasks[task].data(split, lang)

    def train_lang_adapter(self, setup: str, source: str) -> str | None:
        """The language adapter a setup's task adapter is trained on (the source's), or None."""
        return self.lang_adapter_dir(source) if SETUPS[setup].training.on_source_adapter else None

    def eval_adapter_langs(self, setup: str, source: str, lang: str) -> list[str]:
        """The languages whose adapters `setup` stacks under the task adapter on target `lang` (none, one, or the
        related languages madx_avg averages)."""
        kind = SETUPS[setup]
        if kind.related:
            related = self.languages[lang]
            return list(related.averaged if kind.averages else related.related[:1])
        adapter_lang = kind.lang_adapter_for(source, lang)
        return [adapter_lang] if adapter_lang else []

    def eval_lang_adapters(self, setup: str, source: str, lang: str) -> list[str]:
        """The language adapter directories `setup` stacks on target `lang` (a new-script setup: the target's own)."""
        if SETUPS[setup].new_script:
            return [self.paths.script_adapter(SETUPS[setup].adapter_kind, lang)]
        return [self.lang_adapter_dir(adapter_lang) for adapter_lang in self.eval_adapter_langs(setup, source, lang)]

    # ---- which jobs run

    def eval_targets(self) -> list:
        """(task, source, target, setup, seed) of every evaluation the experiment runs: each source to every
        language of the task (itself too, when listed: the in-language score)."""
        return [(task, source, lang, setup, seed) for task, source, lang in self.eval_jobs()
                for setup, seed in self.eval_runs(task, source, lang)]

    def eval_runs(self, task: str, source: str, lang: str) -> list:
        """(setup, seed) of every evaluation of `task` from `source` on `lang`: one evaluation job's runs (a ready
        task adapter's once, under the first seed: it has no seeds of its own)."""
        return [(setup, seed) for setup in self.setups_for(task, lang)
                for seed in (self.seeds[:1] if self.ready_task_adapter(task, source, setup) else self.seeds)]

    def eval_jobs(self) -> list:
        """(task, source, target) of every evaluation job: each source to every language of the task."""
        return [(name, source, lang) for name, task in self.tasks.items() for source in self.sources
                for lang in task.languages]

    def eval_outputs(self) -> list[str]:
        return [self.paths.evaluations(*job) for job in self.eval_jobs()]

    def script_adapters(self) -> list[tuple[str, str]]:
        """(kind, lang) of every new-script language adapter some evaluation stacks."""
        return sorted({(SETUPS[setup].adapter_kind, lang) for _, _, lang, setup, _ in self.eval_targets()
                       if SETUPS[setup].new_script})

    def lang_adapters_needed(self) -> list:
        """Languages whose adapter some setup uses: the source's for training, the targets' for evaluation."""
        needed = set()
        for task, source, lang in self.eval_jobs():
            for setup in self.setups_for(task, lang):
                if SETUPS[setup].training.on_source_adapter:  # the new-script ones too: madx's task adapter
                    needed.add(source)
                if SETUPS[setup].training.target_ready:  # madx_tlr trains over the targets' adapters too
                    needed.update(self.tlr_languages(task, source))
                if not SETUPS[setup].new_script:  # the new-script setups stack their own adapters (script_adapters)
                    needed.update(self.eval_adapter_langs(setup, source, lang))
        return sorted(needed)

    def adapter_only_languages(self) -> list:
        """Languages with a corpus that no task evaluates (nor trains on): their language adapter is trained and its
        held-out perplexity reported, ready for a task that comes later."""
        targets = {lang for task in self.tasks.values() for lang in task.languages}
        stand_ins = {other for lang in targets for other in self.languages[lang].related}  # madx_avg's etc.
        in_tasks = set(self.sources) | targets | stand_ins
        return [lang for lang, language in self.languages.items()
                if lang not in in_tasks and language.corpus and not language.adapter]

    def lang_adapters_to_train(self) -> list:
        needed = [lang for lang in self.lang_adapters_needed() if not self.languages[lang].adapter]
        return sorted({*needed, *self.adapter_only_languages()})

    def lang_adapter_outputs(self) -> list[str]:
        """Every language adapter the workflow trains: the plain ones, then the new-script ones."""
        return ([self.paths.lang_adapter(lang) for lang in self.lang_adapters_to_train()]
                + [self.paths.script_adapter(kind, lang) for kind, lang in self.script_adapters()])

    def task_outputs(self) -> list[str]:
        """Every task adapter (or fine-tuned model, or fusion) some evaluation uses, and the adapters fusions fuse."""
        dirs = []
        for task, source, _, setup, seed in self.eval_targets():
            dirs += [*self.fused_task_dirs(task, source, setup, seed)]
            if not self.ready_task_adapter(task, source, setup):
                dirs.append(self.task_dir(task, source, setup, seed))
        return list(dict.fromkeys(dirs))

    def kadapter_dirs(self, task: str) -> list[str]:
        """The K-adapters the task's heads read (a <task>+<names> task), in order; [] for other tasks."""
        return [self.paths.kadapter(name) for name in self.tasks[task].knowledge]

    def kadapter_outputs(self) -> list[str]:
        """Every K-adapter of the config's knowledge section: each trained once."""
        return [self.paths.kadapter(name) for name in self.knowledge]

    def demo_outputs(self) -> set[str]:
        """The files the demo writes (none without a demo)."""
        if self.demo is None:
            return set()
        out = {self.paths.demo_readme()}
        for lang in self.demo.languages:
            out.add(self.paths.demo_corpus(lang.code))
            out |= {self.paths.demo_task_file(lang.code, split, kind=kind) for split in SPLITS for kind in DEMO_TASKS}
            out |= {self.paths.demo_treebank(lang.code, split) for split in SPLITS}
        return {os.path.normpath(p) for p in out}


def load_experiment(config: dict, where: str = "config", *, check_files: bool = True) -> Experiment:
    """The config checked (schema, then meaning) and parsed; a problem is a ConfigError naming `where` and the key."""
    exp = load_config(config, where, Experiment)
    checks.check_new_scripts(exp)
    checks.check_target_ready(exp)
    checks.check_ready_tasks(exp)
    notes = []
    if check_files:  # the files a job reads first: a missing one says more than any setting
        notes += checks.check_base_model(exp)
        notes += checks.check_files(exp)
    checks.check_lengths(exp)
    if check_files:  # the finished outputs last: they may be GBs to hash the first time
        checks.check_outputs(exp)
    return replace(exp, notes=tuple(notes))


def load_experiment_file(path: str | Path, **kwargs) -> Experiment:
    return load_experiment(load_yaml(path), str(path), **kwargs)
