"""madx bench: measure madx's training and inference speed on a model shape built in memory.

Shapes: tiny (a CPU smoke run), xlmr-base and mbert-base (for a GPU). Prints a table and writes
JSON: language-adapter MLM training tokens/s, model FLOP/s utilisation and peak memory;
task-adapter training tokens/s; evaluation tokens/s; Stack(lang, task) inference against the
bare encoder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_compile_args


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="madx bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="tiny", choices=("tiny", "xlmr-base", "mbert-base"))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    add_compile_args(p)
    p.add_argument("--output", help="write the figures as JSON here")
    p.add_argument("--profile", metavar="DIR", help="also profile 3 steps of each path (after its timing) and "
                   "write the profiler's op tables to DIR; the JSON and table get GPU busy time by kernel kind")
    args = p.parse_args(argv)
    from ..bench import dumps, finite, run_bench, table

    result = run_bench(args.shape, args.batch, args.seq, args.steps, args.warmup, args.compile, args.profile)
    print(table(result))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(dumps(result) + "\n")
    return 0 if finite(result) else 1
