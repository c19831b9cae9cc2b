"""madx report: gather evaluation JSONs into report.md, results.csv, per_type.csv and results.png.

report.md has, per task, mean ± std over seeds per language and the average over target
languages, as in the MAD-X paper's tables, with the best setup per row in bold and each target's
majority-class and chance baselines beside the setups (with one seed: no spread, no ±); F1 per
entity type (NER) or per class with confusion matrices (classification, multiple choice); and
every run's warnings first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import InputError
from .common import run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madx report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--eval", nargs="+", required=True, help="evaluation JSON files, or directories to search")
    p.add_argument("--output", required=True, help="report directory")
    p.add_argument("--source-language")
    p.add_argument("--title", default="madx results")
    p.add_argument("--notes", help="a Markdown file appended to the report")
    p.add_argument("--lang-adapters", nargs="*", default=[],
                   help="trained language adapter directories: their tokenizer coverage goes in the report")
    p.add_argument("--log-file")
    return p


def _body(args) -> None:
    from ..report.write import write_report

    files = []
    for item in map(Path, args.eval):
        if not item.exists():
            raise InputError(f"--eval {item}: no such file or directory")
        files += sorted(item.rglob("*.json")) if item.is_dir() else [item]
    if not files:
        raise InputError(f"--eval {' '.join(args.eval)}: no evaluation JSON files there; run madx evaluate first")
    if args.notes and not Path(args.notes).is_file():
        raise InputError(f"--notes {args.notes}: no such file")
    notes = Path(args.notes).read_text() if args.notes else ""
    write_report(files, args.output, source_language=args.source_language, title=args.title, notes=notes,
                 adapter_dirs=[Path(d) for d in args.lang_adapters])


def main(argv=None) -> int:
    return run(parser(), _body, argv)
