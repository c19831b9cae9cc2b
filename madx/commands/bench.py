"""madx bench: measure madx's training and inference speed on a model shape built in memory.

Shapes: tiny (a CPU smoke run), xlmr-base and mbert-base (for a GPU). Prints a table and writes
JSON: language-adapter MLM training tokens/s, model FLOP/s utilisation and peak memory;
task-adapter training tokens/s; evaluation tokens/s; Stack(lang, task) inference against the
bare encoder.
"""

from __future__ import annotations

import argparse

from ..bench.shapes import SHAPES
from .common import add_compile_args, run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madx bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="tiny", choices=tuple(SHAPES))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    add_compile_args(p)
    p.add_argument("--output", help="write the figures as JSON here")
    p.add_argument("--anchor", metavar="JSON", help="the AdapterHub anchor's output from this machine "
                   "(anchor_adapterhub.py, same --batch/--seq): also print madx and AdapterHub side by side, "
                   "with the ratios and whether each target is met, and add them to the JSON")
    p.add_argument("--profile", metavar="DIR", help="also profile 3 steps of each path (after its timing) and "
                   "write the profiler's op tables to DIR; the JSON and table get GPU busy time by kernel kind")
    p.add_argument("--log-file")
    return p


def _body(args) -> None:
    from ..bench.measure import comparison_table, dumps, finite, read_anchor, run_bench, table, versus_anchor
    from ..core.files import write_text

    anchor = read_anchor(args.anchor, args.batch, args.seq) if args.anchor else None  # before any measurement
    result = run_bench(args.shape, args.batch, args.seq, args.steps, args.warmup, args.compile, args.profile)
    if anchor is not None:
        result["vs_anchor"] = versus_anchor(result, anchor)
    if args.output:
        write_text(args.output, dumps(result) + "\n")
    print(table(result))
    if anchor is not None:
        print(comparison_table(result, anchor, result["vs_anchor"]))
    if not finite(result):
        raise ValueError("a figure is not a finite positive number (see the table above)")


def main(argv=None) -> int:
    return run(parser(), _body, argv)
