"""Shared argparse pieces and logging set-up for the madx commands."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path

from ..core.console import progress_bars_on
from ..core.errors import MadxError
from ..core.settings import field_type


def is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


def setup_logging(log_file: str | None) -> None:
    """INFO to stderr (and the log file) on the main process; warnings only on the others."""
    level = logging.INFO if is_main_process() else logging.WARNING
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_file and is_main_process():
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=level, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("datasets", "transformers", "accelerate", "urllib3", "filelock", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not progress_bars_on():
        quiet_library_progress_bars()


def quiet_library_progress_bars() -> None:
    """No loading/saving/mapping bars from transformers and datasets: in a job's log each is a long line of
    carriage returns. The variables act when the libraries are imported (the commands import them later)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-model", required=True, help="hub id or local path of the base encoder")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow the base model's own code to run (off unless you ask)")
    parser.add_argument("--log-file", help="also write the log here")


def add_dataclass_args(parser, defaults, *, title: str, skip: tuple = ()) -> None:
    """One option per field of the dataclass `defaults`, with its default, type, choices and help (the field's
    metadata): the command's options and the library's defaults are then the same by construction."""
    group = parser.add_argument_group(title)
    for f in dataclasses.fields(defaults):
        if f.name in skip:
            continue
        default, flag = getattr(defaults, f.name), "--" + f.name.replace("_", "-")
        help_text, choices = f.metadata.get("help"), f.metadata.get("choices")
        if f.metadata.get("switch"):
            add_switch_args(group, f, default)
        elif isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif isinstance(default, tuple):
            group.add_argument(flag, type=int, nargs="*", default=list(default), help=help_text)
        else:
            group.add_argument(flag, type={"int": int, "float": float, "str": str}[field_type(f)], default=default, choices=choices, help=help_text)


def dataclass_from(cls, args, **extra):
    """The dataclass `cls` from parsed options (add_dataclass_args), plus `extra` fields."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    values.update(extra)
    return cls(**values)


def add_switch_args(parser, f: dataclasses.Field, default: str) -> None:
    """--NAME [MODE] (on, in MODE; plain --NAME is the first mode) and --no-NAME (off: ""), for a settings field
    declared with option(..., switch=True)."""
    flag, modes = "--" + f.name.replace("_", "-"), f.metadata["choices"]
    parser.add_argument(flag, nargs="?", const=modes[0], default=default, choices=modes, metavar="MODE",
                        help=f"{f.metadata['help']}; here: {flag} MODE, or plain {flag} for {modes[0]!r}")
    parser.add_argument("--no-" + flag[2:], dest=f.name, action="store_const", const="", help=f"turn {flag} off")


def run(parser: argparse.ArgumentParser, body, argv=None) -> int:
    """Parse argv, set up logging, run body(args). Bad input (a MadxError, madx/core/errors.py) prints one clear
    line, no traceback, and exits 2; any other exception is a bug: it goes to the log file too and propagates with
    its traceback."""
    args = parser.parse_args(argv)
    setup_logging(args.log_file)
    try:
        body(args)
    except MadxError as err:
        return user_error(err)
    except Exception:
        _to_log_files("madx: internal error; the traceback follows", sys.exc_info())
        raise
    return 0


def user_error(err: Exception) -> int:
    """One line on the console and in the log file, if any (no traceback); the exit status of a user error."""
    print(f"madx: error: {err}", file=sys.stderr)
    _to_log_files(str(err))
    return 2


def _to_log_files(message: str, exc_info=None) -> None:
    """A record for the log file only: the console gets the message (or the traceback) from the caller."""
    record = logging.LogRecord("madx", logging.ERROR, __file__, 0, message, None, exc_info)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
