"""madx bench: measure madx's training and inference speed on a model shape built in memory.

Shapes: tiny (a CPU smoke run), xlmr-base and mbert-base (for a GPU). Prints a table and writes
JSON: language-adapter MLM training tokens/s, model FLOP/s, MFU against the dense peak of the
device found (where madx/bench/peaks.py knows it) and peak memory; task-adapter training
tokens/s; evaluation tokens/s; Stack(lang, task) inference against the bare encoder.

--peer FILE puts madx beside its peer, AdapterHub, measured on the same device with the same
--batch and --seq: FILE is a JSON object with the keys device, batch, seq,
adapterhub_lang_dense_tok_s, adapterhub_lang_sparse_tok_s, bare_infer_tok_s, stack_infer_tok_s
and, optionally, adapterhub_peak_mem_gb and adapterhub_lang_sparse_tflops (madx/bench/peer.py).
"""

from __future__ import annotations

import argparse
import dataclasses

from ..bench.shapes import SHAPES
from ..core.settings import TrainSettings
from .common import add_switch_args, run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madx bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="tiny", choices=tuple(SHAPES))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    [compile_field] = [f for f in dataclasses.fields(TrainSettings) if f.name == "compile"]
    add_switch_args(p, compile_field, TrainSettings().compile)
    p.add_argument("--output", help="write the figures as JSON here")
    p.add_argument("--peer", metavar="JSON", help="AdapterHub's figures from this device (keys above): also print "
                   "madx and AdapterHub side by side, with the ratios and whether each target is met, and add them "
                   "to the JSON")
    p.add_argument("--profile", metavar="DIR", help="also profile 3 steps of each path (after its timing) and "
                   "write the profiler's op tables to DIR; the JSON and table get GPU busy time by kernel kind")
    p.add_argument("--log-file")
    return p


def _body(args) -> None:
    from ..bench.measure import BenchError, device_name, dumps, finite, run_bench, table
    from ..bench.peer import comparison_table, read_peer, versus_peer
    from ..core.files import write_text

    peer = read_peer(args.peer, args.batch, args.seq, device_name()) if args.peer else None  # before measuring
    result = run_bench(args.shape, args.batch, args.seq, args.steps, args.warmup, args.compile, args.profile)
    if peer is not None:
        result["vs_peer"] = versus_peer(result, peer)
    if args.output:
        write_text(args.output, dumps(result) + "\n")
    print(table(result))
    if peer is not None:
        print(comparison_table(result, peer, result["vs_peer"]))
    if not finite(result):
        raise BenchError("a figure is not a finite positive number (see the table above)")


def main(argv=None) -> int:
    return run(parser(), _body, argv)
