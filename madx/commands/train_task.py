"""madx train-task: train a task adapter and head on labelled source-language data.

Setups: madx (task adapter stacked on the frozen source language adapter), task_only (no
language adapter), full_ft (the whole base fine-tuned: the baseline). The checkpoint with the
best source dev score (seqeval F1 for NER, accuracy for POS) is kept. Writes OUTPUT: the task
adapter (AdapterHub directory; for full_ft the model in OUTPUT/model), head.safetensors,
head_config.json (label names), task.json and train_log.jsonl.
"""

from __future__ import annotations

import argparse

from ..config import TASK_ADAPTER
from ..metrics import TASK_TYPES
from ..setups import TRAIN_SETUPS
from ..train import TrainSettings
from .common import add_adapter_args, add_model_args, add_train_args, adapter_config_from, run, settings_from

DEFAULTS = TrainSettings(max_steps=1000, batch_size=32, lr=1e-4, warmup_steps=0, save_every=500)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madx train-task", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--task", required=True, help="task name; also the task adapter's name")
    p.add_argument("--task-type", default="ner", choices=TASK_TYPES)
    p.add_argument("--setup", default="madx", choices=TRAIN_SETUPS)
    p.add_argument("--lang-adapter", help="source language adapter directory (setup madx)")
    p.add_argument("--train", required=True, help="CoNLL / JSONL file or hub:ID?config=..&split=train")
    p.add_argument("--dev", required=True, help="source-language dev set, same forms as --train")
    p.add_argument("--output", required=True)
    p.add_argument("--max-length", type=int, default=128, help="sub-tokens per sentence")
    p.add_argument("--label-all-subtokens", action=argparse.BooleanOptionalAction, default=False,
                   help="label every sub-token, not just the first")
    p.add_argument("--group-by-length", action=argparse.BooleanOptionalAction, default=True,
                   help="batches of sentences of similar length (less padding), drawn in random order")
    p.add_argument("--eval-every", type=int, default=0, help="dev evaluation interval in steps (0: at the end)")
    add_adapter_args(p, TASK_ADAPTER)
    add_train_args(p, DEFAULTS)
    return p


def _body(args) -> None:
    from ..task import train_task

    train_task(
        args.base_model, args.task, args.setup, args.train, args.dev, args.output, task_type=args.task_type,
        lang_adapter=args.lang_adapter, adapter_config=adapter_config_from(args),
        settings=settings_from(args, eval_every=args.eval_every), max_length=args.max_length,
        label_all_subtokens=args.label_all_subtokens, group_by_length=args.group_by_length,
        trust_remote_code=args.trust_remote_code,
    )


def main(argv=None) -> int:
    return run(parser(), _body, argv)
