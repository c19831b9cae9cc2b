"""Task training (every task family: madx/tasks/families.py) for the madx, task_only and full_ft setups, and the
fusion of trained task adapters (madx_fusion: AdapterFusion on the source language adapter)."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..adapters.composition import Fuse
from ..adapters.config import TASK_ADAPTER, AdapterConfig
from ..adapters.counting import count_parameters
from ..adapters.fusion import DEFAULT_FUSION, add_fusion, fusion_regularization_loss, train_fusion
from ..adapters.io import load_adapter, load_adapter_beside
from ..adapters.kadapter import read_kadapters
from ..adapters.model import (activate, adapter_config, adapter_modules, add_adapter, delete_adapter, madx_state,
                              train_adapters)
from ..core.errors import InputError
from ..core.files import TASK_RECORD
from ..core.settings import EVAL_BATCH_SIZE, TaskTraining
from ..core.setups import TRAININGS, training
from ..data import hub
from ..tasks.families import (DEFAULT_TASK_TYPE, Family, NonFiniteScores, TaskObjective, family, load_head,
                              read_head_config)
from ..tasks.families import predict as predict_task
from .accelerator import TrainingError, cast_frozen, make_accelerator
from .batching import StepIndices
from .checkpoints import BestWeights
from .loop import fit, settings_dict
from .task_output import load_full_model, write_task_output

log = logging.getLogger(__name__)
BEST_DIR = "best"  # in the work dir: the best-on-dev weights and their sha256 (checkpoints.BestWeights)
LEGACY_BEST = "best.pt"  # where an older madx kept them, unchecked


class TokenBatches:
    """global_batch(step) for `train.fit` over encoded sentences.

    group_by_length: the examples of `window` consecutive steps (the same random draw as without it)
    are sorted by length, cut into batches, and those batches taken in a seeded random order, so a
    batch holds sentences of similar length and little padding. Still a pure function of (seed, step).
    """

    def __init__(self, examples: list[dict], batch_size: int, seed: int, pad_id: int, group_by_length: bool = True,
                 window: int = 50, fam: Family | None = None):
        self.examples, self.pad_id, self.seed = examples, pad_id, seed
        self.family = fam or family(DEFAULT_TASK_TYPE)  # what a feature's length is, how a batch is padded and counted
        self.batch_size, self.group_by_length, self.window = batch_size, group_by_length, window
        self.indices = StepIndices(len(examples), batch_size, seed)
        self._grouped: tuple[int, list] | None = None  # (window index, its batches)

    def step_indices(self, step: int) -> list[int]:
        if not self.group_by_length:
            return self.indices(step)
        w = step // self.window
        if self._grouped is None or self._grouped[0] != w:
            drawn = [i for s in range(w * self.window, (w + 1) * self.window) for i in self.indices(s)]
            drawn.sort(key=lambda i: self.family.length(self.examples[i]))  # stable: ties keep the random draw
            batches = [drawn[b : b + self.batch_size] for b in range(0, len(drawn), self.batch_size)]
            order = torch.randperm(len(batches), generator=torch.Generator().manual_seed(self.seed * 7_919 + w))
            self._grouped = (w, [batches[j] for j in order.tolist()])
        return self._grouped[1][step % self.window]

    def __call__(self, step: int) -> tuple[dict, int]:
        batch = self.family.collate([self.examples[i] for i in self.step_indices(step)], self.pad_id)
        return batch, self.family.count(batch)


def predict(model: nn.Module, examples: list[dict], label_names: list[str], pad_id: int, batch_size: int = EVAL_BATCH_SIZE,
            device=None, mixed_precision: str = "no") -> list[list[str]]:
    """Word-level predictions of token classification (first sub-token of each word; words cut off by max_length
    get 'O') from encoded sentences: families.predict for NER/POS."""
    return predict_task(model, family(DEFAULT_TASK_TYPE), examples, examples, label_names, None, pad_id, batch_size=batch_size,
                        device=device, mixed_precision=mixed_precision)


def labelled_sets(fam: Family, train_data, dev_data) -> tuple[list, list, list[str]]:
    """The training and dev examples and the label names (the training data's, or its hub dataset's), both sets
    checked against them before any model is loaded."""
    train_examples, hub_names = fam.read(train_data)
    dev_examples, _ = fam.read(dev_data)
    label_names = fam.label_names(train_examples, hub_names)
    fam.check(train_examples, label_names)
    fam.check(dev_examples, label_names)
    return train_examples, dev_examples, label_names


@dataclass(frozen=True)
class TaskData:
    """A task training's examples (read and checked before any model loads) and their features."""

    train: list
    dev: list
    labels: list[str]
    train_features: list[dict]
    dev_features: list[dict]
    pad_id: int

    @classmethod
    def read(cls, fam: Family, base_model: str, train_data, dev_data, settings: TaskTraining,
             trust_remote_code: bool) -> "TaskData":
        train_examples, dev_examples, label_names = labelled_sets(fam, train_data, dev_data)
        tokenizer = hub.load_tokenizer(base_model, trust_remote_code=trust_remote_code)
        return cls(train_examples, dev_examples, label_names,
                   encoded(fam, tokenizer, train_data, train_examples, label_names, settings, "train"),
                   encoded(fam, tokenizer, dev_data, dev_examples, label_names, settings, "dev"),
                   tokenizer.pad_token_id)


def encoded(fam: Family, tokenizer, spec, examples: list, label_names: list[str], settings: TaskTraining,
            split: str) -> list[dict]:
    """The split's features, with one log line: its examples, and what the family adds (QA: windows, answers off
    their offset)."""
    features = fam.encode(tokenizer, examples, label_names, settings, train=split == "train")
    log.info("%s %s: %d examples%s", split, spec, len(examples), fam.describe(examples, features))
    return features


class BestOnDev:
    """The dev evaluation `fit` calls: scores the model on the dev set and keeps the trainable weights of the best
    score so far in `directory` (checkpoints.BestWeights, in the work dir); `restore` loads them back."""

    def __init__(self, model: nn.Module, fam: Family, dev_examples: list, dev_features: list[dict],
                 label_names: list[str], settings: TaskTraining, pad_id: int, directory: Path, accelerator,
                 lang: str):
        self.model, self.family, self.dev_examples, self.dev_features = model, fam, dev_examples, dev_features
        self.label_names, self.settings, self.pad_id = label_names, settings, pad_id
        self.accelerator, self.lang, self.metric = accelerator, lang, fam.metric
        self.store = BestWeights(directory)
        legacy = Path(directory).with_name(LEGACY_BEST)
        if legacy.exists():  # an older madx's, unverifiable: resuming without it would lose the best so far
            raise TrainingError(f"{legacy}: best-on-dev weights without a checksum (written by an older madx); "
                                f"{self.store.remedy}")
        # a resumed run starts from the best it had saved; every process scores alike, so each keeps it in memory
        self.best_score = self.best()["score"] if self.store.exists() else -1.0

    def best(self) -> dict:
        return self.store.load()

    def __call__(self, step: int) -> dict:
        try:
            pred = predict_task(self.model, self.family, self.dev_examples, self.dev_features, self.label_names,
                                self.settings, self.pad_id, device=self.accelerator.device,
                                mixed_precision=self.settings.mixed_precision)
        except NonFiniteScores as err:
            raise TrainingError(f"dev evaluation at step {step}: {err}: training diverged; lower lr "
                                "(with mixed_precision fp16: use bf16 or no)") from None
        score = self.family.metrics(self.dev_examples, self.dev_features, pred, self.lang)[self.metric]
        if score > self.best_score:
            self.best_score = score
            if self.accelerator.is_main_process:
                weights = {n: p.detach().cpu().clone() for n, p in self.model.named_parameters() if p.requires_grad}
                self.store.save({"score": score, "step": step, "weights": weights})
        self.accelerator.wait_for_everyone()
        return {f"dev_{self.metric}": round(score, 6)}

    def restore(self) -> dict:
        """Loads the best weights into the model; returns {"score", "step", "weights"}."""
        best = self.best()
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in best["weights"].items():
                params[name].copy_(value)
        return best


class FusionObjective(TaskObjective):
    """The family's summed loss plus the fusion's regularization (fusion.fusion_regularization_loss), weighted by the
    micro-batch's share of the step's predictions: `fit` divides every summed loss by the step's count, so the term
    enters each optimizer step once, whatever the batch and grad_accum."""

    def forward(self, **batch) -> torch.Tensor:  # the logged training loss includes the term
        return super().forward(**batch) + fusion_regularization_loss(self.model) * self.family.count(batch)


def check_train_task_args(setup: str, task_type: str, lang_adapter, fuse=None, init_from=None,
                          tlr_adapters=None, knowledge=None) -> None:
    on_adapter = training(setup).on_source_adapter
    if knowledge and training(setup).full_model:
        raise InputError(f"setup {setup} fine-tunes the whole encoder the K-adapters read (--knowledge): K-adapters "
                         "are read by the adapter setups' heads, over the frozen encoder they were trained beside")
    family(task_type)  # a known task type
    if on_adapter != (lang_adapter is not None):
        raise InputError(f"setup {setup} {'needs' if on_adapter else 'takes no'} language adapter "
                         "(lang_adapter); setups trained on the source language adapter: "
                         f"{[name for name, t in TRAININGS.items() if t.on_source_adapter]}")
    if training(setup).fusion != bool(fuse):
        raise InputError(f"setup {setup} " + ("fuses trained task adapters: give their directories (--fuse DIR ...; "
                                              "the task's own madx training first)" if training(setup).fusion else
                                              "fuses no adapters (--fuse is for setup madx_fusion)"))
    if training(setup).target_ready != bool(tlr_adapters):
        raise InputError(f"setup {setup} " + (
            "trains over the targets' language adapters in turn with the source's: give them (--tlr-adapters DIR ...)"
            if training(setup).target_ready else "trains over one language adapter (--tlr-adapters is for madx_tlr)"))
    if fuse and init_from:
        raise InputError(f"setup {setup} starts from the trainings it fuses (--fuse); it takes no --init-from")
    if fuse:
        check_fused(fuse, lang_adapter, training(setup).fuses)


def check_fused(fuse, lang_adapter, fused: str) -> None:
    """--fuse's directories: each once, and each (where its task.json says; AdapterHub's have none) a `fused`
    training over the language adapter the fusion trains over."""
    resolved = [Path(d).resolve() for d in fuse]
    twice = sorted({str(d) for d, r in zip(fuse, resolved) if resolved.count(r) > 1})
    if twice:
        raise InputError(f"--fuse lists {twice} more than once; give each task adapter once")
    for directory in map(Path, fuse):
        if not (directory / TASK_RECORD).is_file():
            continue
        record = json.loads((directory / TASK_RECORD).read_text())
        if record.get("setup") != fused:
            raise InputError(f"--fuse {directory}: a {record.get('setup')} training; a fusion fuses {fused} task "
                             f"adapters (results/tasks/<task>/<source>/{fused}/seed<n>)")
        trained_on = record.get("lang_adapter")
        if lang_adapter and trained_on and Path(trained_on).resolve() != Path(lang_adapter).resolve():
            raise InputError(f"--fuse {directory}: trained over the language adapter {trained_on}, not {lang_adapter} "
                             "(--lang-adapter): fuse task adapters trained over the one the fusion trains over")


def build_task_model(base_model: str, task: str, setup: str, fam: Family, label_names: list[str], lang_adapter,
                     adapter_config, trust_remote_code: bool, init_from: Path | None = None, fuse=(),
                     fusion_config: str = DEFAULT_FUSION) -> nn.Module:
    """The base with the family's head: full_ft trains everything; task_only adds the task adapter; madx stacks
    it on the source language adapter. Only the task adapter and head train in the adapter setups. `init_from`:
    another task's output of the same setup to start from (its adapter and head; for full_ft its model).
    madx_fusion loads the trained task adapters `fuse` under the source language adapter and trains only a fusion
    of them and the head (started from the first's: the task's own madx training)."""
    if init_from is not None:
        check_init_from(init_from, fam.task_type, label_names, what="init_from")
    full_model = training(setup).full_model
    if full_model and init_from is not None:
        return load_full_model(init_from, fam.auto_class)
    model = hub.load_task_model(base_model, fam.auto_class, label_names, trust_remote_code=trust_remote_code)
    if full_model:
        return model
    lang = load_adapter(model, lang_adapter) if lang_adapter is not None else None
    if training(setup).fusion:
        # its head is where this one starts
        check_init_from(Path(fuse[0]), fam.task_type, label_names, what="--fuse's first (the task's own) training")
        names = [load_adapter(model, directory) for directory in fuse]
        load_head(model, fuse[0])
        add_fusion(model, names, fusion_config)
        activate(model, lang, Fuse(*names))
        train_fusion(model, names)
        return model
    add_adapter(model, task, adapter_config)
    if init_from is not None:
        copy_adapter_from(model, init_from, task)
        load_head(model, init_from)
    activate(model, *([lang] if lang else []), task)
    train_adapters(model, task)
    return model


class TargetReadySteps:
    """madx_tlr (target-language-ready task adapters, Parović et al. 2023): the training's batches, each with the
    language adapter it is trained over: the source's and the targets' in turn (step % their number, so a resumed run
    stacks on each step what an uninterrupted one did). Dev scores are read over the source's, as madx's are."""

    def __init__(self, model: nn.Module, task: str, names: list[str], batches):
        self.model, self.task, self.names, self.batches = model, task, names, batches

    @staticmethod
    def load(model: nn.Module, task: str, tlr_adapters: list) -> list[str]:
        """Load the targets' adapters beside the source's (frozen, like it); the names in turn, the source's first."""
        source = madx_state(model).active[0]  # build_task_model stacked the task adapter on the source's
        names = [source, *(load_adapter_beside(model, directory) for directory in tlr_adapters)]
        train_adapters(model, task)
        return names

    def __call__(self, step: int):
        activate(self.model, self.names[step % len(self.names)], self.task)
        return self.batches(step)

    def on_source(self, evaluate):
        """`evaluate` (the dev score) with the source's language adapter under the task adapter."""
        def on_source(step: int) -> dict:
            activate(self.model, self.names[0], self.task)
            return evaluate(step)

        return on_source


def check_init_from(init_from: Path, task_type: str, label_names: list[str], what: str) -> None:
    """The head saved in `init_from` (`what` the user gave it as) fits this task: the same type and labels."""
    head = read_head_config(init_from)
    if head["task_type"] != task_type or head["label_names"] != label_names:
        raise InputError(f"{what} {init_from}: a {head['task_type']} task with labels {head['label_names']}; this "
                         f"task is {task_type} with labels {label_names}: a task can start only from one whose head "
                         "fits (the same type and labels)")


def copy_adapter_from(model: nn.Module, directory: Path, task: str) -> None:
    """Set adapter `task`'s weights to those of the adapter saved in `directory` (the same configuration)."""
    other = load_adapter(model, directory, name=f"{task}_init")
    try:
        if adapter_config(model, other) != adapter_config(model, task):
            raise InputError(f"init_from {directory}: its adapter's configuration {adapter_config(model, other)} is "
                             f"not this task's {adapter_config(model, task)}; give both tasks the same task_adapter")
        source = {path[: -len(other)]: m for path, m in adapter_modules(model, other).items()}
        for path, module in adapter_modules(model, task).items():
            module.load_state_dict(source[path[: -len(task)]].state_dict())
    finally:
        delete_adapter(model, other)


def train_task(
    base_model: str,
    task: str,
    setup: str,
    train_data,
    dev_data,
    output: str | Path,
    *,
    task_type: str = DEFAULT_TASK_TYPE,
    lang_adapter: str | Path | None = None,
    adapter_config: AdapterConfig = TASK_ADAPTER,
    settings: TaskTraining = TaskTraining(),
    lang: str | None = None,
    init_from: str | Path | None = None,
    fuse: list | None = None,
    fusion_config: str = DEFAULT_FUSION,
    tlr_adapters: list | None = None,
    knowledge: list | None = None,
    trust_remote_code: bool = False,
) -> Path:
    """Train `setup` of `task` on labelled source-language data; keep the weights of the best dev score. `lang`,
    the source language, normalises QA answers (articles, Chinese characters) for the dev score. `init_from`:
    two-stage training (the MAD-X paper's XCOPA protocol, SIQA then COPA) from another task's output. `fuse`
    (setup madx_fusion): the task adapter directories to fuse, this task's own madx training first. `tlr_adapters`
    (setup madx_tlr): the targets' language adapters, taken in turn with the source's under the task adapter.
    `knowledge`: K-adapter directories (madx train-kadapter) the head reads beside the encoder (frozen; the head's
    knowledge reader trains with it).
    (One function on purpose: every input is read and checked before the model loads, and the processes meet
    before and after the main one writes; that order reads top to bottom here.)"""
    output = Path(output)
    check_train_task_args(setup, task_type, lang_adapter, fuse, init_from, tlr_adapters, knowledge)
    fam = family(task_type)
    config = hub.load_config(base_model, trust_remote_code=trust_remote_code)
    hub.check_sequence_length(config, settings.max_length, base_model, key="max_length")
    accelerator = make_accelerator(settings)
    data = TaskData.read(fam, base_model, train_data, dev_data, settings, trust_remote_code)

    torch.manual_seed(settings.seed)
    init_from = Path(init_from) if init_from else None
    model = build_task_model(base_model, task, setup, fam, data.labels, lang_adapter, adapter_config,
                             trust_remote_code, init_from, fuse or (), fusion_config)
    tlr_names = TargetReadySteps.load(model, task, tlr_adapters) if tlr_adapters else None  # before the cast
    knowledge_dirs = read_kadapters(model, knowledge) if knowledge else None  # after every freeze: its reader trains
    if not training(setup).full_model and accelerator.device.type == "cuda":
        cast_frozen(model, settings.mixed_precision)
    log.info("%s/%s: %s", task, setup, count_parameters(model))

    work_dir = output.with_name(output.name + ".work")
    dev = BestOnDev(model, fam, data.dev, data.dev_features, data.labels, settings, data.pad_id,
                    work_dir / BEST_DIR, accelerator, lang)
    batches = TokenBatches(data.train_features, settings.batch_size, settings.seed, data.pad_id,
                           group_by_length=settings.group_by_length, fam=fam)
    evaluate = dev
    if tlr_names:
        batches = TargetReadySteps(model, task, tlr_names, batches)
        evaluate = batches.on_source(dev)
    objective = FusionObjective(model, fam) if training(setup).fusion else TaskObjective(model, fam)
    fit(objective, batches, settings, work_dir, accelerator, evaluate=evaluate)
    best = dev.restore()
    accelerator.wait_for_everyone()  # every process has read the best weights before the work dir goes
    if accelerator.is_main_process:
        record = {
            "base_model": base_model, "task": task, "setup": setup, "task_type": task_type,
            "lang_adapter": str(lang_adapter) if lang_adapter else None, "train": str(train_data),
            "dev": str(dev_data), "max_length": settings.max_length, "group_by_length": settings.group_by_length,
            "label_names": data.labels, f"best_dev_{dev.metric}": best["score"], "best_step": best["step"],
            "settings": settings_dict(settings), "init_from": str(init_from) if init_from else None,
            "fuse": [str(d) for d in fuse] if fuse else None, "fusion_config": fusion_config if fuse else None,
            "tlr_adapters": [str(d) for d in tlr_adapters] if tlr_adapters else None,
            "knowledge": knowledge_dirs,
        }
        num_choices = fam.num_choices(data.train)
        write_task_output(model, task, setup, base_model, data.labels, task_type, work_dir, output, record,
                          num_choices)
        if not settings.keep_checkpoints:
            shutil.rmtree(work_dir, ignore_errors=True)
        log.info("%s/%s: best dev %s %.4f at step %d -> %s", task, setup, dev.metric, best["score"], best["step"],
                 output)
    accelerator.wait_for_everyone()
    return output
