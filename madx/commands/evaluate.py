"""madx evaluate: zero-shot evaluation of a trained task on a target-language test set.

Setups: madx (target language adapter + task adapter), source_la (the source language adapter
kept: no swap), task_only (task adapter alone), full_ft (the fine-tuned base). Writes a JSON
file with seqeval micro precision/recall/F1 and per-type F1 (NER) or accuracy (POS), sentence
and token counts, and exactly which adapters were stacked.
"""

from __future__ import annotations

import argparse

from ..setups import EVAL_SETUPS
from ..settings import MIXED_PRECISION
from .common import add_model_args, run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madx evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--setup", required=True, choices=EVAL_SETUPS)
    p.add_argument("--task-dir", required=True, help="madx train-task output for this setup")
    p.add_argument("--lang-adapter", help="language adapter to stack under the task adapter (madx, source_la)")
    p.add_argument("--test", required=True, help="target test set: CoNLL / JSONL file or hub:...")
    p.add_argument("--output", required=True, help="metrics JSON to write")
    p.add_argument("--task", required=True)
    p.add_argument("--source", help="the source language the task was trained on (for the record and the report)")
    p.add_argument("--lang", required=True, help="the target language of the test set")
    p.add_argument("--seed", type=int)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--mixed-precision", default="auto", choices=("auto", *MIXED_PRECISION),
                   help="auto: bf16 on a GPU that has it (the whole model cast, inference only), fp32 elsewhere")
    return p


def _body(args) -> None:
    from ..evaluate import evaluate

    evaluate(args.base_model, args.setup, args.task_dir, args.test, args.output, lang=args.lang, task=args.task,
             source=args.source, seed=args.seed, lang_adapter=args.lang_adapter, batch_size=args.batch_size,
             mixed_precision=args.mixed_precision, trust_remote_code=args.trust_remote_code)


def main(argv=None) -> int:
    return run(parser(), _body, argv)
