"""madx build-base: train a sentencepiece tokenizer and pretrain a small XLM-R-style encoder with MLM.

The offline demo's base model: the tokenizer sees every --tokenizer-corpus, the encoder only
--corpus, so languages left out of --corpus are unseen by the base model.
"""

from __future__ import annotations

import argparse

from ..core.settings import PretrainSettings
from ..demo.data import TinyEncoder
from .common import add_dataclass_args, dataclass_from, run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madx build-base", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", nargs="+", required=True, help="pretraining corpora")
    p.add_argument("--tokenizer-corpus", nargs="+", required=True, help="corpora the tokenizer is trained on")
    p.add_argument("--output", required=True)
    p.add_argument("--log-file")
    add_dataclass_args(p, TinyEncoder(), title="shape")
    add_dataclass_args(p, PretrainSettings(), title="training", skip=("eval_every",))
    return p


def _body(args) -> None:
    from ..demo.base_model import build_base_model

    build_base_model(args.corpus, args.tokenizer_corpus, args.output, shape=dataclass_from(TinyEncoder, args),
                     settings=dataclass_from(PretrainSettings, args))


def main(argv=None) -> int:
    return run(parser(), _body, argv)
