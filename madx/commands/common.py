"""Shared argparse pieces and logging set-up for the madx commands."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ..config import AdapterConfig
from ..train import COMPILE_MODES, MIXED_PRECISION, TrainSettings, progress_bars_on


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


def add_adapter_args(parser: argparse.ArgumentParser, defaults: AdapterConfig) -> None:
    group = parser.add_argument_group("adapter")
    group.add_argument("--architecture", default=defaults.architecture, choices=("pfeiffer", "houlsby"))
    group.add_argument("--reduction-factor", type=float, default=defaults.reduction_factor)
    group.add_argument("--non-linearity", default=defaults.non_linearity, choices=("relu", "gelu", "swish"))
    group.add_argument("--invertible", action=argparse.BooleanOptionalAction, default=defaults.invertible,
                       help="NICE invertible adapter on the embeddings")
    group.add_argument("--inv-reduction-factor", type=float, default=defaults.inv_reduction_factor)
    group.add_argument("--leave-out", type=int, nargs="*", default=list(defaults.leave_out),
                       help="layer indices without adapters (MAD-X 2.0 leaves out the last)")


def adapter_config_from(args) -> AdapterConfig:
    rf = args.reduction_factor
    return AdapterConfig(
        architecture=args.architecture, reduction_factor=int(rf) if rf == int(rf) else rf,
        non_linearity=args.non_linearity, invertible=args.invertible,
        inv_reduction_factor=args.inv_reduction_factor, leave_out=tuple(args.leave_out),
    )


def add_train_args(parser: argparse.ArgumentParser, defaults: TrainSettings) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--max-steps", type=int, default=defaults.max_steps)
    group.add_argument("--batch-size", type=int, default=defaults.batch_size,
                       help="global batch per optimizer step (split over processes and --grad-accum)")
    group.add_argument("--grad-accum", type=int, default=defaults.grad_accum)
    group.add_argument("--lr", type=float, default=defaults.lr)
    group.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps)
    group.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    group.add_argument("--seed", type=int, default=defaults.seed)
    group.add_argument("--mixed-precision", default=defaults.mixed_precision, choices=MIXED_PRECISION)
    group.add_argument("--log-every", type=int, default=defaults.log_every)
    group.add_argument("--save-every", type=int, default=defaults.save_every, help="checkpoint interval in steps")
    group.add_argument("--keep-checkpoints", action="store_true", help="keep OUTPUT.work/ after finishing")
    add_compile_args(group, defaults.compile)


def add_compile_args(parser, default: str = "") -> None:
    parser.add_argument("--compile", nargs="?", const="default", default=default, choices=COMPILE_MODES,
                        metavar="MODE", help="torch.compile the training step, in MODE (default: 'default'; "
                        "'reduce-overhead' adds CUDA graphs). GPU; the first step spends a minute or so compiling")
    parser.add_argument("--no-compile", dest="compile", action="store_const", const="", help="no torch.compile")


def settings_from(args, **extra) -> TrainSettings:
    return TrainSettings(
        max_steps=args.max_steps, batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr,
        warmup_steps=args.warmup_steps, weight_decay=args.weight_decay, seed=args.seed,
        mixed_precision=args.mixed_precision, log_every=args.log_every, save_every=args.save_every,
        keep_checkpoints=args.keep_checkpoints, compile=args.compile, **extra,
    )


def run(parser: argparse.ArgumentParser, body, argv=None) -> int:
    """Parse argv, set up logging, run body(args); a user error prints one clear line (no traceback), exit 2."""
    args = parser.parse_args(argv)
    setup_logging(args.log_file)
    from ..config import AdapterConfigError
    from ..hf import ModelLoadError
    from ..io import AdapterLoadError
    from ..model import UnsupportedModelError
    from ..sources import DataError
    from ..train import TrainingError

    user_errors = (AdapterConfigError, AdapterLoadError, DataError, ModelLoadError, TrainingError,
                   UnsupportedModelError, FileNotFoundError, ValueError)
    try:
        body(args)
    except user_errors as err:
        return user_error(err)
    return 0


def user_error(err: Exception) -> int:
    """One line on the console and in the log file, if any (no traceback); the exit status of a user error."""
    print(f"madx: error: {err}", file=sys.stderr)
    record = logging.LogRecord("madx", logging.ERROR, __file__, 0, str(err), None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):  # the console has it already
            handler.handle(record)
    return 2
