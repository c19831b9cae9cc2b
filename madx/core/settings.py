"""Training settings: every default and every allowed value in one place.

The library's functions take these dataclasses, the commands build their options from them
(commands/common.py), and the experiment config's sections are checked against them
(experiment.py), so a default is written once. A field's `help` is its documentation in all three.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from .errors import MadxError

MIXED_PRECISION = ("no", "bf16", "fp16")
AUTO_PRECISION = "auto"  # inference: bf16 on a CUDA GPU that has it, else "no" (evaluation/evaluate.py)
EVAL_BATCH_SIZE = 64  # examples (or MLM blocks) per forward pass where nothing is trained: dev and test scores
ROMANIZERS = ("demo", "anyascii", "uroman")  # madx/data/romanize.py
EMBEDDING_MODES = ("new", "rows")  # madx/adapters/embeddings.py
NEW_EMBEDDINGS, EMBEDDING_ROWS = EMBEDDING_MODES  # a tokenizer of its own; the base's rows it uses, trained
# the config's languages.<l>.embeddings keys, and the LangTraining field each one sets
EMBEDDING_KEYS = {"mode": "embeddings", "vocab_size": "vocab_size", "lr": "embedding_lr"}
# LangTraining's new-script keys: the workflow sets them for one language's madx_translit / madx_emb adapter
SCRIPT_KEYS = ("romanize", *EMBEDDING_KEYS.values(), "match_romanized")
# torch.compile modes; "reduce-overhead" adds CUDA graphs, which fixed-shape MLM batches allow
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")
# The smallest value of each training settings field (TrainSettings and its subclasses) that still gives a job that
# works (by field name: a name means the same in every training settings class; other dataclasses, such as the demo's
# shape, keep their own bounds), and why where it is not plain. The config schema carries the same bounds
# (experiment.config_schema), so the config check and the commands refuse the same values.
AT_LEAST = {"steps": 1, "max_steps": 1, "batch_size": 1, "grad_accum": 1, "log_every": 1, "save_every": 1, "warmup_steps": 0,
            "weight_decay": 0, "max_grad_norm": 0, "eval_every": 0, "seed": 0, "seq_len": 3, "max_tokens": 1,
            "num_proc": 1, "vocab_size": 16, "max_length": 3, "doc_stride": 0, "max_answer_length": 1, "n_best": 1}
POSITIVE = ("lr", "embedding_lr")
WHY = {"seq_len": "room for <s>, </s> and one token to mask", "max_length": "room for the special tokens and one sub-token"}


class TrainingError(MadxError, RuntimeError):
    """A training run that cannot start or go on (a setting this machine cannot run, a diverged loss, a
    checkpoint that cannot be trusted): the message says what to do."""


class SettingError(MadxError, ValueError):
    """A settings value a job cannot run with; `keys` are the fields it concerns, so that the config check can name
    the key where each was written. `after_key`: the message to show after those keys (the config check's
    `train_lang.lr: nan must be a finite number`), where the message itself starts by naming the field."""

    def __init__(self, message: str, *keys: str, after_key: str | None = None):
        super().__init__(message)
        self.keys = keys
        self.after_key = after_key or message


def bound_message(name: str, value) -> str | None:
    """What is wrong with `value` for the field `name` (its bound in AT_LEAST / POSITIVE), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if name in POSITIVE and value is not None and value <= 0:
        return "must be positive"
    minimum = AT_LEAST.get(name)
    if minimum is None or value is None or value >= minimum:
        return None
    why = f" ({WHY[name]})" if name in WHY else ""
    return ("must not be negative" if minimum == 0 else f"must be at least {minimum}") + why


def check_bounds(settings) -> None:
    for f in fields(settings):
        value = getattr(settings, f.name)
        problem = bound_message(f.name, value)
        if problem:
            raise SettingError(f"{f.name}={value} {problem}", f.name, after_key=f"{value} {problem}")


def field_type(f) -> str:
    """The base type name of a settings field ("int | None" -> "int"), for its option and its schema entry."""
    return str(f.type).split("|")[0].strip()


def option(default, help: str, **metadata):
    """A settings field with its documentation (command-line help, config schema description). Metadata:
    `choices`, the allowed values; `switch=True`, a mode that is also an on/off switch ("" is off, choices[0] is
    what "on" means): true/false or a mode in the config, --NAME [MODE] and --no-NAME on the command line."""
    return field(default=default, metadata={"help": help, **metadata})


@dataclass(frozen=True)
class TrainSettings:
    max_steps: int = option(1000, "optimizer steps")
    batch_size: int = option(32, "global batch per optimizer step: all processes and accumulation steps together")
    grad_accum: int = option(1, "micro-batches per optimizer step on each process")
    lr: float = option(1e-4, "peak learning rate (AdamW)")
    warmup_steps: int = option(0, "linear warm-up steps, then linear decay to 0")
    weight_decay: float = option(0.0, "AdamW weight decay")
    max_grad_norm: float = option(1.0, "gradient clipping norm (0: no clipping)")
    seed: int = option(42, "seed of initialisation, batches and masking")
    mixed_precision: str = option("no", "frozen base and autocast in bf16/fp16 (GPU), or no", choices=MIXED_PRECISION)
    log_every: int = option(10, "a log line (loss, tokens/s, ETA) every N steps")
    save_every: int = option(500, "checkpoint interval in steps; a rerun resumes from the last checkpoint")
    eval_every: int = option(0, "task training: dev evaluation every N steps (0: only at the end)")
    keep_checkpoints: bool = option(False, "keep OUTPUT.work/ (checkpoints) after finishing")
    compile: str = option("", "torch.compile the training step: true, false or a mode ('reduce-overhead' adds CUDA "
                          "graphs); GPU, the first step spends a minute or so compiling", choices=COMPILE_MODES,
                          switch=True)

    def __post_init__(self):
        check_bounds(self)
        if self.mixed_precision not in MIXED_PRECISION:
            problem = f"{self.mixed_precision!r}; use one of {MIXED_PRECISION}"
            raise SettingError(f"mixed_precision={problem}", "mixed_precision", after_key=problem)
        if self.batch_size % self.grad_accum:  # each process's micro-batch is batch_size / (processes x grad_accum)
            raise SettingError(f"batch_size={self.batch_size} is not a multiple of grad_accum={self.grad_accum}; "
                               "make it one", "batch_size", "grad_accum")
        for f in fields(self):  # a switch (option(switch=True)) given as true/false: its first mode, or off
            value = getattr(self, f.name)
            if f.metadata.get("switch") and (isinstance(value, bool) or value is None):
                object.__setattr__(self, f.name, f.metadata["choices"][0] if value else "")
        if self.compile and self.compile not in COMPILE_MODES:
            problem = f"{self.compile!r}; use true, false or one of {COMPILE_MODES}"
            raise SettingError(f"compile={problem}", "compile", after_key=problem)
        if self.compile in CUDA_GRAPH_MODES and self.grad_accum > 1:
            # a CUDA graph replay reuses its output memory: gradients accumulated across replays would be overwritten
            raise SettingError(f"compile={self.compile!r} (CUDA graphs) needs grad_accum 1, got {self.grad_accum}; "
                               "use compile: default, or a smaller batch_size without accumulation", "compile",
                               "grad_accum")

    def micro_batch_size(self, world_size: int) -> int:
        per = self.batch_size / (world_size * self.grad_accum)
        if per != int(per):
            raise SettingError(
                f"batch_size={self.batch_size} does not split over {world_size} process(es) x grad_accum="
                f"{self.grad_accum}; make it a multiple of {world_size * self.grad_accum}"
            )
        return int(per)


@dataclass(frozen=True)
class LangTraining(TrainSettings):
    """A language adapter's MLM training: `madx train-lang` and the config's `train_lang`."""

    batch_size: int = option(64, "global batch per optimizer step: all processes and accumulation steps together")
    seq_len: int = option(256, "tokens per sequence")
    max_tokens: int | None = option(None, "use at most this many corpus tokens")
    line_by_line: bool = option(False, "one corpus line per sequence (padded) instead of concatenated blocks")
    num_proc: int = option(1, "processes that tokenize the corpus (once; then cached)")
    # new scripts (madx_translit, madx_emb): set per language by the workflow, not in the config's train_lang
    romanize: str = option("", "romanize the corpus with this romanizer before tokenizing it (madx_translit)",
                           choices=("", *ROMANIZERS))
    embeddings: str = option("", "also train input embeddings (madx_emb): new (a tokenizer trained on the corpus, "
                             "rows started from the base's pieces they overlap) or rows (the base vocabulary's rows "
                             "the corpus uses)", choices=("", *EMBEDDING_MODES))
    vocab_size: int = option(8000, "embeddings new: pieces of the language's tokenizer")
    embedding_lr: float | None = option(None, "learning rate of the embeddings (default: lr)")
    match_romanized: str = option("", "embeddings new: also match new pieces to the base's through this romanizer "
                                  "(a script the base does not have)", choices=("", *ROMANIZERS))

    def __post_init__(self):
        super().__post_init__()
        if self.romanize and self.embeddings:
            raise SettingError("romanize (a romanized corpus) and embeddings (new embeddings for the script itself) "
                               "are two setups: train one language adapter for each", "romanize", "embeddings")


@dataclass(frozen=True)
class TaskTraining(TrainSettings):
    """Task-adapter (or full fine-tuning) training: `madx train-task` and the config's `train_task`."""

    max_length: int = option(128, "sub-tokens per sentence")
    label_all_subtokens: bool = option(False, "label every sub-token, not just the first of each word")
    group_by_length: bool = option(True, "batches of sentences of similar length (less padding), in random order")
    doc_stride: int = option(32, "qa: sub-tokens shared by consecutive windows of a context longer than max_length")
    max_answer_length: int = option(30, "qa: the longest answer span predicted, in sub-tokens")
    n_best: int = option(20, "qa: start and end candidates per window when reading an answer span")



@dataclass(frozen=True)
class PretrainSettings(TrainSettings):
    """The demo base model's MLM pretraining: `madx build-base` and the config's `demo.pretrain`."""

    batch_size: int = option(64, "global batch per optimizer step")
    lr: float = option(5e-4, "peak learning rate (AdamW)")
    warmup_steps: int = option(100, "linear warm-up steps, then linear decay to 0")
    log_every: int = option(50, "a log line (loss, tokens/s, ETA) every N steps")


@dataclass(frozen=True)
class KnowledgeTraining:
    """A K-adapter's training on its knowledge task (madx/training/kadapter.py): `madx train-kadapter` and the
    config's `train_knowledge`. AdamW at a constant rate; the weights of the best dev score are kept."""

    max_steps: int = option(1000, "optimizer steps")
    batch_size: int = option(32, "sentences (or relation examples) per step")
    lr: float = option(1e-4, "learning rate (AdamW)")
    max_length: int = option(128, "sub-tokens per sentence")
    eval_every: int = option(100, "dev score every N steps (and at the end)")
    seed: int = option(42, "seed of initialisation and batches")
    log_every: int = option(10, "a log line (loss, ETA) every N steps")

    def __post_init__(self):
        check_bounds(self)


@dataclass(frozen=True)
class EmeaSettings:
    """madx_emea (EMEA, Wang et al., Findings of EMNLP 2021): for each test batch the ensemble's weights start
    uniform and take `steps` gradient steps of size `lr` on the entropy of the predictions, then the batch is
    predicted with them. The config's `emea` section; `madx evaluate --emea-steps/--emea-lr`."""

    steps: int = option(1, "gradient steps on each test batch's prediction entropy (the paper: one)")
    lr: float = option(10.0, "step size on the ensemble's weight scores (softmax logits; the paper: 10)")

    def __post_init__(self):
        check_bounds(self)
