"""madx evaluate: zero-shot evaluation of trained tasks on a target-language test set.

Setups: madx (target language adapter + task adapter), source_la (the source language adapter
kept: no swap), task_only (task adapter alone), full_ft (the fine-tuned base); for a script the
base cannot read, madx_translit (the target's adapter trained on its romanized corpus; the test
data romanized with --romanize) and madx_emb (the target's adapter with its own embeddings and
tokenizer, saved in its embeddings/ directory); for a target with no corpus, madx_nearest (a related
language's adapter), madx_avg (the average of several: give each, --run madx_avg 1 DIR LA1 LA2 ...) and
madx_emea (that average with its weights learned on each test batch: --emea-steps, --emea-lr); madx_tlr (a
target-ready task adapter, stacked like madx). A language adapter may be a hub id (org/name[@revision]).
Each result is a
JSON file with seqeval micro precision/recall/F1 and per-type F1 (NER) or accuracy (POS, classification,
multiple choice) or exact match and F1 (QA), the test set's baselines ("baselines": majority, chance),
per-class scores and a confusion matrix (classification, multiple choice), "warnings" (predictions all
one class), exactly which adapters were stacked, and the digest of each input ("inputs"). A model whose
scores are NaN or infinite gets no result: the command fails and says which run and weights.

One run:   --setup madx --seed 1 --task-dir DIR --lang-adapter LA --output result.json
Many runs: --run madx 1 DIR LA --run task_only 1 DIR2 ... --each 'eval/seed{seed}/{setup}.json'
           --output all.json   (the base model loaded once; runs already finished with the same
           inputs are kept, not redone; all.json lists every run's result)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import InputError
from ..core.settings import (AUTO_PRECISION, EVAL_BATCH_SIZE, MIXED_PRECISION, ROMANIZERS, EmeaSettings,
                             SettingError)
from ..core.setups import EVAL_SETUPS, SETUPS
from .common import add_model_args, run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madx evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--setup", choices=EVAL_SETUPS, help="one run: its setup")
    p.add_argument("--task-dir", help="one run: the madx train-task output for this setup (or a ready task adapter "
                                      "with its head: a directory or a hub id)")
    p.add_argument("--lang-adapter", help="one run: language adapter under the task adapter (madx, source_la)")
    p.add_argument("--seed", type=int, help="one run: the task training's seed (for the record)")
    p.add_argument("--run", nargs="+", action="append", metavar="SETUP SEED TASK_DIR [LANG_ADAPTER ...]",
                   help="many runs: one per option, evaluated with the base model loaded once")
    p.add_argument("--each", help="many runs: each run's result JSON, a pattern with {setup} and {seed}")
    p.add_argument("--romanize", choices=ROMANIZERS,
                   help="the target's romanizer: madx_translit runs read the test data romanized with it")
    p.add_argument("--test", required=True, help="target test set: CoNLL / JSONL file or hub:...")
    p.add_argument("--output", required=True, help="the result JSON (one run), or the JSON of all runs (--run)")
    p.add_argument("--task", required=True)
    p.add_argument("--source", help="the source language the task was trained on (for the record and the report)")
    p.add_argument("--lang", required=True, help="the target language of the test set")
    p.add_argument("--batch-size", type=int, default=EVAL_BATCH_SIZE)
    defaults = EmeaSettings()
    p.add_argument("--emea-steps", type=int, default=defaults.steps,
                   help=f"madx_emea: gradient steps on each test batch's prediction entropy (default {defaults.steps})")
    p.add_argument("--emea-lr", type=float, default=defaults.lr,
                   help=f"madx_emea: the size of each step on the ensemble's weight scores (default {defaults.lr})")
    p.add_argument("--related", nargs="+", metavar="LANG[=DISTANCE]",
                   help="the related languages whose adapters madx_nearest / madx_avg / madx_emea runs stack, nearest "
                        "first, with their URIEL distance where it chose them: logged and written in those results")
    p.add_argument("--mixed-precision", default=AUTO_PRECISION, choices=(AUTO_PRECISION, *MIXED_PRECISION),
                   help="auto: bf16 on a GPU that has it (the whole model cast, inference only), fp32 elsewhere")
    return p


def runs_of(args) -> list:
    """The runs the options ask for; a clear error for a mix of the two forms or a malformed --run."""
    from ..evaluation.evaluate import Run

    if args.run is None:
        if args.setup is None or args.task_dir is None:
            raise InputError("give --setup and --task-dir (one run), or --run SETUP SEED TASK_DIR [LANG_ADAPTER ...]")
        return [Run(args.setup, args.seed, args.task_dir, args.lang_adapter,
                    Path(args.output), _romanizer_of(args.setup, args), _emea_of(args))]
    if args.setup or args.task_dir or args.lang_adapter or args.seed is not None:
        raise InputError("--run gives each run's setup, seed, task dir and language adapter: drop --setup, --seed, "
                         "--task-dir and --lang-adapter")
    if not args.each or "{setup}" not in args.each or "{seed}" not in args.each:
        raise InputError(f"--each {args.each!r}: with --run, give each run's result path with {{setup}} and {{seed}}")
    runs = []
    for values in args.run:
        if len(values) < 3 or values[0] not in EVAL_SETUPS or not values[1].isdigit():
            raise InputError(f"--run {' '.join(values)}: expected SETUP SEED TASK_DIR [LANG_ADAPTER ...] with SETUP "
                             f"one of {EVAL_SETUPS} and SEED a number (madx_avg: every adapter it averages)")
        setup, seed, task_dir = values[0], int(values[1]), values[2]
        runs.append(Run(setup, seed, task_dir, values[3:], Path(args.each.format(setup=setup, seed=seed)),
                        _romanizer_of(setup, args), _emea_of(args)))
    return runs


def related_of(args) -> dict[str, float | None] | None:
    """--related LANG[=DISTANCE] ... as {lang: its URIEL distance, or None where the config named it}."""
    if not args.related:
        return None
    related = {}
    for value in args.related:
        lang, _, distance = value.partition("=")
        try:
            related[lang] = float(distance) if distance else None
        except ValueError:
            raise InputError(f"--related {value}: expected LANG or LANG=DISTANCE with DISTANCE a number") from None
    return related


def _emea_of(args) -> EmeaSettings:
    try:
        return EmeaSettings(steps=args.emea_steps, lr=args.emea_lr)
    except SettingError as err:
        raise InputError(f"--emea-{err.keys[0]}: {err.after_key}") from None


def _romanizer_of(name: str, args) -> str | None:
    romanizes = SETUPS[name].romanizes
    if romanizes and not args.romanize:
        raise InputError(f"a {name} run reads the test data romanized: give --romanize (demo, anyascii, uroman)")
    return args.romanize if romanizes else None


def _body(args) -> None:
    from ..evaluation.evaluate import evaluate_runs

    runs = runs_of(args)
    evaluate_runs(args.base_model, runs, args.test, lang=args.lang, task=args.task, source=args.source,
                  summary=args.output if args.run else None, related=related_of(args), batch_size=args.batch_size,
                  mixed_precision=args.mixed_precision, trust_remote_code=args.trust_remote_code)


def main(argv=None) -> int:
    return run(parser(), _body, argv)
