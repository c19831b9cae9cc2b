"""madx train-lang: train a MAD-X language adapter with masked language modelling.

Only the language adapter and its invertible adapter train; the loss and the output layer run
only at the 15% masked positions. Writes OUTPUT (an AdapterHub adapter directory with
train_log.jsonl and training.json); checkpoints go to OUTPUT.work/ and a rerun resumes there.
Runs the same under `accelerate launch` on 1..N processes.
"""

from __future__ import annotations

import argparse

from ..adapters.config import LANGUAGE_ADAPTER, AdapterConfig
from ..core.settings import LangTraining
from .common import add_dataclass_args, add_model_args, dataclass_from, run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madx train-lang", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--lang", required=True, help="language code; also the adapter's name")
    p.add_argument("--corpus", required=True, nargs="+",
                   help="text files (.txt, .txt.gz, .jsonl) or hub:ID?config=..&split=..&column=..")
    p.add_argument("--output", required=True, help="adapter directory to write")
    p.add_argument("--cache-dir", help="tokenized-corpus cache (default: beside the output)")
    add_dataclass_args(p, LANGUAGE_ADAPTER, title="adapter")
    add_dataclass_args(p, LangTraining(), title="training", skip=("eval_every",))
    return p


def _body(args) -> None:
    from ..training.language import train_language_adapter

    train_language_adapter(
        args.base_model, args.lang, args.corpus, args.output, adapter_config=dataclass_from(AdapterConfig, args),
        settings=dataclass_from(LangTraining, args), cache_dir=args.cache_dir,
        trust_remote_code=args.trust_remote_code,
    )


def main(argv=None) -> int:
    return run(parser(), _body, argv)
