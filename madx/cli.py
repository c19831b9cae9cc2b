"""`madx <command>`: dispatch to each command's own `main(argv)`; imports stay lazy so --help is fast."""

from __future__ import annotations

import importlib
import sys

from . import __version__

COMMANDS = {
    "train-lang": ("madx.commands.train_lang", "train a language adapter with masked language modelling"),
    "train-task": ("madx.commands.train_task", "train a task adapter (or a full fine-tuning baseline)"),
    "train-kadapter": ("madx.commands.train_kadapter", "train a K-adapter on a knowledge task (trees, relations)"),
    "evaluate": ("madx.commands.evaluate", "zero-shot evaluation of one setup on a target test set"),
    "report": ("madx.commands.report", "results.csv, report.md and a plot from evaluation JSONs"),
    "bench": ("madx.commands.bench", "measure training and inference speed (tiny CPU smoke run or GPU shapes)"),
    "inspect": ("madx.commands.inspect", "show an adapter directory's config and parameter count"),
    "launch": ("madx.commands.launch", "run a command on a job's GPUs/CPU (what workflow rules call)"),
    "check-config": ("madx.commands.check_config", "validate an experiment config before running it"),
    "demo-data": ("madx.commands.demo_data", "write the offline demo's synthetic benchmark"),
    "build-base": ("madx.commands.build_base", "train a tokenizer and pretrain a small base encoder"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: madx <command> [options]\n\ncommands:")
        for name, (_, summary) in COMMANDS.items():
            print(f"  {name:<12} {summary}")
        print("\n`madx <command> --help` documents each command.")
        return 0
    if argv[0] == "--version":
        print(f"madx {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        print(f"madx: unknown command {argv[0]!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
