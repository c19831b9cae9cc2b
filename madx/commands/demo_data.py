"""madx demo-data: write the offline demo's synthetic multilingual NER benchmark.

Corpora (corpora/{lang}.txt) for every language and CoNLL NER files (ner/en.train.conll,
ner/en.dev.conll, ner/{lang}.test.conll), deterministic from --seed. See madx/demo.py.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .common import run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madx demo-data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--corpus-sentences", type=int, default=20000)
    p.add_argument("--train-sentences", type=int, default=3000)
    p.add_argument("--dev-sentences", type=int, default=500)
    p.add_argument("--test-sentences", type=int, default=800)
    p.add_argument("--log-file")
    return p


def _body(args) -> None:
    from ..demo import LANGUAGES, generate
    from ..io import replace_dir, staging_dir

    out = Path(args.output)
    staging = staging_dir(out)
    generate(staging, seed=args.seed, corpus_sentences=args.corpus_sentences, train_sentences=args.train_sentences,
             dev_sentences=args.dev_sentences, test_sentences=args.test_sentences)
    replace_dir(staging, out)
    logging.getLogger("madx.demo").info(
        "wrote %s: corpora of %d sentences for %d languages, %d/%d English NER train/dev and %d test sentences "
        "per language (see its README.md)", out, args.corpus_sentences, len(LANGUAGES), args.train_sentences,
        args.dev_sentences, args.test_sentences)


def main(argv=None) -> int:
    return run(parser(), _body, argv)
