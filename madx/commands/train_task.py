"""madx train-task: train a task adapter and head on labelled source-language data.

Setups: madx (task adapter stacked on the frozen source language adapter), task_only (no
language adapter), full_ft (the whole base fine-tuned: the baseline), madx_fusion (AdapterFusion: the trained
task adapters given by --fuse, frozen on the source language adapter, combined by a fusion layer that trains with
the head; written as AdapterHub's fusion directory, with a copy of each fused adapter in OUTPUT/adapters/),
madx_tlr (a target-ready task adapter: trained over the source language adapter and --tlr-adapters in turn,
a different one each step). Task types: ner, pos
(token classification), classification (a sentence or a pair), multiple_choice, qa (extractive).
The checkpoint with the best source dev score (seqeval F1 for NER, accuracy for POS, classification
and multiple choice, answer F1 for QA) is kept. Writes OUTPUT: the task
adapter (AdapterHub directory; for full_ft the model in OUTPUT/model), its head in AdapterHub's format
(head_config.json, model_head.safetensors), task.json and train_log.jsonl.
"""

from __future__ import annotations

import argparse

from ..adapters.config import TASK_ADAPTER, AdapterConfig
from ..core.settings import TaskTraining
from ..core.setups import DEFAULT_FUSION, FUSION_PRESETS, MADX, TRAIN_SETUPS
from ..tasks.families import DEFAULT_TASK_TYPE, TASK_TYPES
from .common import add_dataclass_args, add_model_args, dataclass_from, run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madx train-task", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--task", required=True, help="task name; also the task adapter's name")
    p.add_argument("--task-type", default=DEFAULT_TASK_TYPE, choices=TASK_TYPES)
    p.add_argument("--setup", default=MADX.name, choices=TRAIN_SETUPS)
    p.add_argument("--lang-adapter", help="source language adapter directory (setup madx)")
    p.add_argument("--train", required=True, help="CoNLL / JSONL file or hub:ID?config=..&split=train")
    p.add_argument("--dev", required=True, help="source-language dev set, same forms as --train")
    p.add_argument("--output", required=True)
    p.add_argument("--init-from", help="two-stage training: another task's train-task output (same setup) to start "
                   "from: its adapter and head (full_ft: its model), e.g. SIQA before COPA")
    p.add_argument("--fuse", nargs="+", metavar="DIR", help="setup madx_fusion: the train-task outputs whose task "
                   "adapters are fused, this task's own madx training first (its head is where the new one starts)")
    p.add_argument("--tlr-adapters", nargs="+", metavar="DIR", help="setup madx_tlr: the targets' language adapters; "
                   "each step trains over the next of --lang-adapter (the source's) and these, in turn")
    p.add_argument("--knowledge", nargs="+", metavar="DIR", help="K-adapters (madx train-kadapter outputs) the head "
                   "reads beside the encoder, frozen; the head's knowledge reader trains with it")
    p.add_argument("--fusion-config", default=DEFAULT_FUSION, choices=FUSION_PRESETS,
                   help="dynamic: a value matrix started as the identity, regularised towards it; static: none")
    p.add_argument("--lang", help="the source language (qa: how answers are normalised for the dev score)")
    add_dataclass_args(p, TASK_ADAPTER, title="adapter")
    add_dataclass_args(p, TaskTraining(), title="training")
    return p


def _body(args) -> None:
    from ..training.task import train_task

    train_task(
        args.base_model, args.task, args.setup, args.train, args.dev, args.output, task_type=args.task_type,
        lang_adapter=args.lang_adapter, adapter_config=dataclass_from(AdapterConfig, args),
        settings=dataclass_from(TaskTraining, args), lang=args.lang, init_from=args.init_from, fuse=args.fuse,
        fusion_config=args.fusion_config, tlr_adapters=args.tlr_adapters,
        knowledge=args.knowledge, trust_remote_code=args.trust_remote_code,
    )


def main(argv=None) -> int:
    return run(parser(), _body, argv)
