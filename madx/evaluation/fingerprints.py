"""What an evaluation result depends on: the digests of its inputs (weights' and configs' bytes, the test data's,
the precision, madx's version; never logs or timings), their fingerprint, and why a run is computed again."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Callable

from .. import __version__
from ..adapters.embeddings import EMBEDDINGS_DIR, INFO_FILE
from ..adapters.kadapter import reader_config
from ..adapters.heads import HEAD_CONFIG, HEAD_WEIGHTS, OTHER_WEIGHTS
from ..core.files import CHECKSUMS, LANG_RECORD, TASK_RECORD, files_under, sha256_of
from ..core.settings import TaskTraining
from ..core.sources import is_hub_spec
from ..data.romanize import romanizer
from ..training.cards import CARD
from .models import run_embeddings
from .runs import Run

# what a trained output holds that no evaluation number depends on: logs, records of how it was trained, checksums
NOT_INPUTS = frozenset({"train_log.jsonl", "pretrain_log.jsonl", LANG_RECORD, TASK_RECORD, "madx_base.json",
                        INFO_FILE, CHECKSUMS, CARD})
NOT_INPUT_DIRS = frozenset({"checkpoints"})  # and any hidden path (.NAME.staging, .cache)
HEAD_FILES = frozenset({HEAD_CONFIG, HEAD_WEIGHTS, *OTHER_WEIGHTS})
# what evaluation reads of a task's training settings: how the test data is encoded and answers are read
EVAL_SETTINGS = ("max_length", "doc_stride", "max_answer_length", "n_best")


def is_input(name: str) -> bool:
    """Whether a file (its path relative to an output directory) is something a result depends on."""
    parts = name.split("/")
    return parts[-1] not in NOT_INPUTS and not any(p.startswith(".") or p in NOT_INPUT_DIRS for p in parts)


def content_digest(path: Path, keep: Callable[[str], bool] = lambda name: True) -> str:
    """sha256 of a file's bytes, or of the files of a directory a result depends on (`is_input`, and `keep` of
    their relative names): names and bytes, in sorted order. Each file is read once per process (files.sha256_of)."""
    path = Path(path).resolve()
    if not path.is_dir():
        return sha256_of(path)
    digest = hashlib.sha256()
    for file in files_under(path):
        name = file.relative_to(path).as_posix()
        if is_input(name) and keep(name):
            digest.update(f"{name}\0{sha256_of(file)}\0".encode())
    return digest.hexdigest()


def _digest_or_name(spec: str) -> str:
    """A local file or directory: its bytes; a hub id or hub: spec: the name itself."""
    path = Path(spec)
    return content_digest(path) if not is_hub_spec(spec) and path.exists() else str(spec)


def task_settings(task_dir: Path) -> TaskTraining:
    """The settings a task was trained with (task.json; defaults for a task adapter AdapterHub trained)."""
    task_file = Path(task_dir) / TASK_RECORD
    task_info = json.loads(task_file.read_text()) if task_file.is_file() else {}
    return TaskTraining(**{k: v for k, v in task_info.get("settings", {}).items()
                           if k in TaskTraining.__dataclass_fields__})


def shared_inputs(base_model: str, test_data: str, precision: str, batch_size: int) -> dict:
    """What every run of one evaluation job depends on: the base model, the test data and how it is run."""
    return {"madx": __version__, "base_model": _digest_or_name(base_model), "test": _digest_or_name(str(test_data)),
            "precision": precision, "batch_size": batch_size}


def run_inputs(run: Run, shared: dict, lang: str | None = None) -> dict:
    """The digest of each thing a run's result depends on: `shared_inputs`, the task's weights (its adapter, or
    full_ft's model) and head, the task settings evaluation reads, the language adapter (each one madx_avg and
    madx_emea average), madx_emea's steps, the embeddings a madx_emb run reads with, the K-adapters its head reads, and the romanizer (with its
    version) of a madx_translit run (evaluate_runs adds the hub ids and commits). Never logs or timings."""
    task_dir = Path(run.task_dir)
    settings = task_settings(task_dir)
    inputs = {**shared, "setup": run.setup.name,
              "task_weights": content_digest(task_dir, keep=lambda name: name not in HEAD_FILES),
              "head": content_digest(task_dir, keep=lambda name: name in HEAD_FILES),
              "task_settings": {key: getattr(settings, key) for key in EVAL_SETTINGS},
              "lang_adapter": _adapter_digest(run.lang_adapter) if run.lang_adapter else None}
    if run.setup.averages:  # madx_avg, madx_emea: each adapter it averages, in order
        inputs["lang_adapters"] = [_adapter_digest(directory) for directory in run.lang_adapters]
    if run.emea is not None:
        inputs["emea"] = dataclasses.asdict(run.emea)
    if run.setup.new_embeddings:
        inputs["embeddings"] = content_digest(run_embeddings(run))
    if run.romanize:
        inputs["romanize"] = romanizer(run.romanize, lang).identity
    knowledge = reader_config(task_dir) if task_dir.is_dir() else None
    if knowledge is not None:  # the K-adapters its head reads (the reader itself is among the task's weights)
        inputs["knowledge"] = {name: content_digest(Path(directory))
                               for name, directory in knowledge["kadapters"].items()}
    return inputs


def _adapter_digest(directory: Path) -> str:
    """A language adapter's digest; its own input embeddings (madx_emb) are an input of their own."""
    return content_digest(directory, keep=lambda name: name.split("/")[0] != EMBEDDINGS_DIR)


def fingerprint(inputs: dict) -> str:
    """sha256 of a run's inputs (`run_inputs`)."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def previous_result(run: Run) -> dict | None:
    """The run's earlier result, if its file exists and reads."""
    try:
        result = json.loads(Path(run.output).read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return result if isinstance(result, dict) else None


def why_recomputed(previous: dict | None, inputs: dict) -> str:
    """Why a run is computed again: which of its inputs' digests differ from those its earlier result records."""
    if previous is None:
        return "no earlier result"
    recorded = previous.get("inputs")
    if not isinstance(recorded, dict):
        return "its earlier result records no inputs (written by an older madx)"
    changed = [key for key in sorted(set(recorded) | set(inputs)) if recorded.get(key) != inputs.get(key)]
    if not changed:
        return "its earlier result's fingerprint does not match its inputs"
    return "changed since its earlier result: " + ", ".join(
        f"{key} {_shown(recorded.get(key))} -> {_shown(inputs.get(key))}" for key in changed)


def _shown(value) -> str:
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]  # a digest: its start is enough to tell two apart
    return json.dumps(value, sort_keys=True)
