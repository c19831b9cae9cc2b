"""madx train-lang: train a MAD-X language adapter with masked language modelling.

Only the language adapter and its invertible adapter train; the loss and the output layer run
only at the 15% masked positions. Writes OUTPUT (an AdapterHub adapter directory with
train_log.jsonl and training.json); checkpoints go to OUTPUT.work/ and a rerun resumes there.
Runs the same under `accelerate launch` on 1..N processes.
"""

from __future__ import annotations

import argparse

from ..config import LANGUAGE_ADAPTER
from ..train import TrainSettings
from .common import add_adapter_args, add_model_args, add_train_args, adapter_config_from, run, settings_from

DEFAULTS = TrainSettings(max_steps=1000, batch_size=64, lr=1e-4, warmup_steps=0, save_every=500)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madx train-lang", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--lang", required=True, help="language code; also the adapter's name")
    p.add_argument("--corpus", required=True, nargs="+",
                   help="text files (.txt, .txt.gz, .jsonl) or hub:ID?config=..&split=..&column=..")
    p.add_argument("--output", required=True, help="adapter directory to write")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--max-tokens", type=int, default=None, help="use at most this many corpus tokens")
    p.add_argument("--line-by-line", action=argparse.BooleanOptionalAction, default=False,
                   help="one corpus line per sequence (padded) instead of concatenated blocks")
    p.add_argument("--cache-dir", help="tokenized-corpus cache (default: beside the output)")
    p.add_argument("--num-proc", type=int, default=1, help="processes that tokenize the corpus (once; then cached)")
    add_adapter_args(p, LANGUAGE_ADAPTER)
    add_train_args(p, DEFAULTS)
    return p


def _body(args) -> None:
    from ..lang_adapter import train_language_adapter

    train_language_adapter(
        args.base_model, args.lang, args.corpus, args.output, adapter_config=adapter_config_from(args),
        settings=settings_from(args), seq_len=args.seq_len, max_tokens=args.max_tokens, line_by_line=args.line_by_line,
        num_proc=args.num_proc, cache_dir=args.cache_dir, trust_remote_code=args.trust_remote_code,
    )


def main(argv=None) -> int:
    return run(parser(), _body, argv)
