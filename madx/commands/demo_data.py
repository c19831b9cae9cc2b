"""madx demo-data: write the offline demo's synthetic multilingual NER benchmark, one language at a time.

For each --language CODE:WORD_ORDER:SCRIPT[:seen][:tokenizer][:of=PARENT@SHARE] (e.g. qad:SOV:cyrillic; of=: a
variety keeping SHARE of PARENT's words): an unlabelled
corpus (corpora/CODE.txt) and CoNLL NER files (ner/CODE.{train,dev,test}.conll), deterministic from
--seed and the language alone. With --readme, only README.md: the table of the given languages.
See madx/demo/data.py.
"""

from __future__ import annotations

import argparse
import logging

from ..demo.data import DemoData, DemoLanguage
from .common import add_dataclass_args, dataclass_from, run


def parse_language(text: str) -> DemoLanguage:
    """CODE:WORD_ORDER:SCRIPT[:seen][:tokenizer][:of=PARENT@SHARE], the form the workflow passes."""
    code, *rest = text.split(":")
    flags = {flag for flag in rest[2:] if not flag.startswith("of=")}
    variety = [flag.removeprefix("of=").split("@") for flag in rest[2:] if flag.startswith("of=")]
    unknown = flags - {"seen", "tokenizer"}
    if len(rest) < 2 or unknown or len(variety) > 1 or any(len(v) != 2 for v in variety):
        raise argparse.ArgumentTypeError(f"{text!r}: use CODE:WORD_ORDER:SCRIPT[:seen][:tokenizer][:of=PARENT@SHARE], "
                                         "e.g. qad:SOV:cyrillic or qae:SVO:latin:of=qac@0.7")
    try:
        of = {"variety_of": variety[0][0], "shared": float(variety[0][1])} if variety else {}
        return DemoLanguage(code, rest[0], rest[1], seen="seen" in flags, tokenizer="tokenizer" in flags, **of)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madx demo-data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", required=True, help="the demo's data directory")
    p.add_argument("--language", nargs="+", required=True, type=parse_language, metavar="CODE:ORDER:SCRIPT")
    p.add_argument("--readme", action="store_true", help="write only README.md, the table of these languages")
    p.add_argument("--log-file")
    add_dataclass_args(p, DemoData(), title="sizes")
    return p


def _body(args) -> None:
    from pathlib import Path

    from ..demo.data import describe, generate_language
    from ..core.files import write_text

    log = logging.getLogger("madx.demo.data")
    if args.readme:
        log.info("wrote %s", write_text(Path(args.output) / "README.md", describe(args.language)))
        return
    data = dataclass_from(DemoData, args)
    for language in args.language:
        generate_language(args.output, language, data)
        log.info("wrote %s: %s (%s, %s), %d unlabelled and %d/%d/%d NER train/dev/test sentences", args.output,
                 language.code, language.word_order, language.script, data.corpus_sentences, data.train_sentences,
                 data.dev_sentences, data.test_sentences)


def main(argv=None) -> int:
    return run(parser(), _body, argv)
