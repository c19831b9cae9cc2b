"""madx build-base: train a sentencepiece tokenizer and pretrain a small XLM-R-style encoder with MLM.

The offline demo's base model: the tokenizer sees every --tokenizer-corpus, the encoder only
--corpus, so languages left out of --corpus are unseen by the base model.
"""

from __future__ import annotations

import argparse

from ..train import TrainSettings
from .common import add_train_args, run, settings_from

DEFAULTS = TrainSettings(max_steps=1000, batch_size=64, lr=5e-4, warmup_steps=100, save_every=500, log_every=50)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madx build-base", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", nargs="+", required=True, help="pretraining corpora")
    p.add_argument("--tokenizer-corpus", nargs="+", required=True, help="corpora the tokenizer is trained on")
    p.add_argument("--output", required=True)
    p.add_argument("--vocab-size", type=int, default=1000)
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--num-hidden-layers", type=int, default=4)
    p.add_argument("--num-attention-heads", type=int, default=4)
    p.add_argument("--intermediate-size", type=int, default=512)
    p.add_argument("--max-seq-len", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--line-by-line", action=argparse.BooleanOptionalAction, default=True,
                   help="pretrain on one sentence per sequence (default) or on concatenated blocks")
    p.add_argument("--log-file")
    add_train_args(p, DEFAULTS)
    return p


def _body(args) -> None:
    from ..base import TinyEncoder, build_base_model

    shape = TinyEncoder(hidden_size=args.hidden_size, num_hidden_layers=args.num_hidden_layers,
                        num_attention_heads=args.num_attention_heads, intermediate_size=args.intermediate_size,
                        max_seq_len=args.max_seq_len, dropout=args.dropout, line_by_line=args.line_by_line)
    build_base_model(args.corpus, args.tokenizer_corpus, args.output, shape=shape, vocab_size=args.vocab_size,
                     settings=settings_from(args))


def main(argv=None) -> int:
    return run(parser(), _body, argv)
