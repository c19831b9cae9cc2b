"""Zero-shot evaluation: every (setup, seed) of one (task, source, target) in one process.

The base model is loaded once; each run swaps its language adapter, task adapter and head in memory
(full_ft loads its own fine-tuned model). Each run's result is its own JSON file, stamped with a
fingerprint of everything the number depends on (the weights' and configs' bytes, the test data's, the
precision, madx's version; never logs or timings), and the digest of each of those inputs: a run whose file
carries the current fingerprint is reused, never redone, so a rerun after adding a seed or retraining one language
adapter computes only what changed, and the log says which input changed.

Beside its metrics, each result has the test set's trivial baselines ("baselines": {"majority", "chance"}, in the
main metric's scale), per-class scores and a confusion matrix for classification and multiple choice, and
"warnings" (predictions all one class); a model whose scores are NaN or infinite gets no result, but an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Callable

import torch

from .. import __version__
from ..adapters.embeddings import (EMBEDDINGS_DIR, INFO_FILE, EmbeddingLoadError, embeddings_dir, load_embeddings,
                                   swap_input_embeddings)
from ..adapters.heads import HEAD_CONFIG, HEAD_WEIGHTS, OTHER_WEIGHTS, load_head, read_head_config
from ..adapters.io import load_adapter, read_adapter_config
from ..adapters.model import activate, delete_adapter, madx_state
from ..core.errors import InputError, MadxError
from ..core.files import CHECKSUMS, files_under, sha256_of, write_text
from ..core.settings import MIXED_PRECISION, TaskTraining
from ..core.setups import Setup, setup as setup_named
from ..core.tensors import HALF_DTYPES
from ..data import hub
from ..data.romanize import romanize_examples, romanizer
from ..tasks.families import NonFiniteScores, family, predict
from ..training.accelerator import check_mixed_precision
from ..training.task import FULL_MODEL_DIR, load_full_model

log = logging.getLogger(__name__)
# the numbers a run's log line shows
LOGGED = ("f1", "precision", "recall", "accuracy", "exact_match", "windows", "misaligned_answers")


@dataclass(frozen=True)
class Run:
    """One evaluation: a setup's trained task (and the language adapter under it) on the test set."""

    setup: Setup  # or its name
    seed: int | None
    task_dir: Path
    lang_adapter: Path | None
    output: Path  # this run's result JSON
    romanize: str | None = None  # madx_translit: the romanizer the test data is read through

    def __post_init__(self):
        if isinstance(self.setup, str):
            object.__setattr__(self, "setup", setup_named(self.setup))
        name = self.setup.name
        if self.setup.romanizes != bool(self.romanize):
            raise InputError(f"setup {name} (seed {self.seed}): " + (
                "needs the target's romanizer (--romanize)" if self.romanize is None else
                "reads the test data as it is; only madx_translit romanizes it"))
        if (self.setup.lang_adapter is None) != (self.lang_adapter is None):
            need = "needs a language adapter" if self.lang_adapter is None else "takes no language adapter"
            raise InputError(f"setup {name} (seed {self.seed}) {need}")


def inference_precision(mixed_precision: str) -> str:
    """"auto" -> "bf16" on a CUDA GPU with bf16, else "no"; anything else is checked against this machine."""
    if mixed_precision == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    if mixed_precision not in MIXED_PRECISION:
        raise InputError(f"mixed_precision={mixed_precision!r}; use auto or one of {MIXED_PRECISION}")
    check_mixed_precision(mixed_precision)
    return mixed_precision


# ---- what a result depends on

# what a trained output holds that no evaluation number depends on: logs, records of how it was trained, checksums
NOT_INPUTS = frozenset({"train_log.jsonl", "pretrain_log.jsonl", "training.json", "task.json", "madx_base.json",
                        INFO_FILE, CHECKSUMS})
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
    return content_digest(path) if not str(spec).startswith("hub:") and path.exists() else str(spec)


def task_settings(task_dir: Path) -> TaskTraining:
    """The settings a task was trained with (task.json; defaults for a task adapter AdapterHub trained)."""
    task_file = Path(task_dir) / "task.json"
    task_info = json.loads(task_file.read_text()) if task_file.is_file() else {}
    return TaskTraining(**{k: v for k, v in task_info.get("settings", {}).items()
                           if k in TaskTraining.__dataclass_fields__})


def shared_inputs(base_model: str, test_data: str, precision: str, batch_size: int) -> dict:
    """What every run of one evaluation job depends on: the base model, the test data and how it is run."""
    return {"madx": __version__, "base_model": _digest_or_name(base_model), "test": _digest_or_name(str(test_data)),
            "precision": precision, "batch_size": batch_size}


def run_inputs(run: Run, shared: dict, lang: str | None = None) -> dict:
    """The digest of each thing a run's result depends on: `shared_inputs`, the task's weights (its adapter, or
    full_ft's model) and head, the task settings evaluation reads, the language adapter, the embeddings a madx_emb
    run reads with, and the romanizer (with its version) of a madx_translit run. Never logs or timings."""
    task_dir = Path(run.task_dir)
    settings = task_settings(task_dir)
    inputs = {**shared, "setup": run.setup.name,
              "task_weights": content_digest(task_dir, keep=lambda name: name not in HEAD_FILES),
              "head": content_digest(task_dir, keep=lambda name: name in HEAD_FILES),
              "task_settings": {key: getattr(settings, key) for key in EVAL_SETTINGS},
              "lang_adapter": content_digest(run.lang_adapter, keep=lambda name: name.split("/")[0] != EMBEDDINGS_DIR)
              if run.lang_adapter else None}
    if run.setup.new_embeddings:
        inputs["embeddings"] = content_digest(run_embeddings(run))
    if run.romanize:
        inputs["romanize"] = romanizer(run.romanize, lang).identity
    return inputs


def fingerprint(inputs: dict) -> str:
    """sha256 of a run's inputs (`run_inputs`)."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _previous(run: Run) -> dict | None:
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


# ---- models


def build_eval_model(base_model: str, setup: str, task_dir: Path, label_names: list[str], lang_adapter=None,
                     trust_remote_code: bool = False, task_type: str = "ner"):
    """The model one setup evaluates, built alone (a fresh base model), and which adapters it stacks."""
    models = EvalModels(base_model, trust_remote_code, torch.device("cpu"), None)
    run = Run(setup, None, Path(task_dir), Path(lang_adapter) if lang_adapter else None, Path("-"))
    return models.model_for(run, label_names, task_type)


class EvalModels:
    """The base model with a task head, loaded once per (task type, label set) and kept on the device in the
    evaluation dtype; language adapters loaded once and kept; a run's task adapter and head swapped in."""

    def __init__(self, base_model: str, trust_remote_code: bool, device: torch.device, dtype):
        self.base_model, self.trust_remote_code, self.device, self.dtype = base_model, trust_remote_code, device, dtype
        self.shared: dict[tuple, torch.nn.Module] = {}  # (task type, label names) -> the base model with that head
        self.lang_names: dict[tuple, str] = {}  # (task type, label names, lang adapter dir) -> its name in that model
        self.task_name: str | None = None
        self.embeddings: dict[str, tuple] = {}  # language adapter dir -> (its embedding matrix, its tokenizer)
        self.swapped: tuple | None = None  # (model, the base's input embeddings) while a run uses its own

    def tokenizer_for(self, run: Run, base_tokenizer):
        """The tokenizer a run's test data is read with: its language adapter's own (madx_emb), or the base's."""
        found = self._embeddings(run)
        return found[1] if found else base_tokenizer

    def _embeddings(self, run: Run) -> tuple | None:
        if not run.setup.new_embeddings:
            return None
        key = str(Path(run.lang_adapter).resolve())
        if key not in self.embeddings:
            directory = run_embeddings(run)
            config = hub.load_config(self.base_model, trust_remote_code=self.trust_remote_code)
            self.embeddings[key] = load_embeddings(directory, hidden_size=config.hidden_size)
        return self.embeddings[key]

    def _model(self, label_names: list[str], task_type: str) -> torch.nn.Module:
        key = (task_type, tuple(label_names))
        if key not in self.shared:
            model = hub.load_task_model(self.base_model, family(task_type).auto_class, label_names,
                                       trust_remote_code=self.trust_remote_code)
            self.shared[key] = model.to(device=self.device, dtype=self.dtype).eval()  # inference only: no fp32 copy
        return self.shared[key]

    def model_for(self, run: Run, label_names: list[str], task_type: str) -> tuple[torch.nn.Module, dict]:
        """The model for `run`, ready to predict, and what it stacks (for the record)."""
        if run.setup.training.full_model:
            model = load_full_model(run.task_dir, family(task_type).auto_class)
            return model.to(device=self.device, dtype=self.dtype).eval(), {"full_model": str(run.task_dir / FULL_MODEL_DIR)}
        model = self._model(label_names, task_type)
        self.release(model)
        load_head(model, run.task_dir)
        own = self._embeddings(run)
        if own is not None:  # the language adapter's own input embeddings, for this run only
            self.swapped = (model, swap_input_embeddings(model, own[0]))
        stack, used = [], {}
        if run.lang_adapter is not None:
            key = (task_type, tuple(label_names), str(Path(run.lang_adapter).resolve()))
            if key not in self.lang_names:
                self.lang_names[key] = _load_named(model, run.lang_adapter)
            stack.append(self.lang_names[key])
            used["lang_adapter"] = str(run.lang_adapter)
        self.task_name = _load_named(model, run.task_dir)
        stack.append(self.task_name)
        used.update(task_adapter=str(run.task_dir), stack=stack)
        activate(model, *stack)
        return model, used

    def release(self, model: torch.nn.Module) -> None:
        """Take the last run's task adapter out (language adapters stay for the next runs)."""
        if self.task_name is not None:
            delete_adapter(model, self.task_name)
            self.task_name = None
        if self.swapped is not None:
            swapped_model, base_embeddings = self.swapped
            swapped_model.set_input_embeddings(base_embeddings)
            self.swapped = None


def run_embeddings(run: Run) -> Path:
    """The embeddings directory a madx_emb run's language adapter carries; a clear error when it has none."""
    directory = embeddings_dir(run.lang_adapter)
    if directory is None:
        raise EmbeddingLoadError(f"setup madx_emb (seed {run.seed}): language adapter {run.lang_adapter} has no "
                                 f"{EMBEDDINGS_DIR}/ (train it with --embeddings new or rows)")
    return directory


def _load_named(model, directory: Path) -> str:
    """Load an adapter under its own name, or that name with a number when the model already has one by it."""
    meta, _ = read_adapter_config(directory)
    name = meta.get("name")
    taken = madx_state(model).configs
    if name and name in taken:
        name = next(f"{name}_{i}" for i in count(2) if f"{name}_{i}" not in taken)
    return load_adapter(model, directory, name=name)


# ---- evaluation


def evaluate_runs(
    base_model: str,
    runs: list[Run],
    test_data,
    *,
    lang: str,
    task: str,
    source: str | None = None,
    summary: str | Path | None = None,
    batch_size: int = 64,
    mixed_precision: str = "auto",
    trust_remote_code: bool = False,
) -> list[dict]:
    """Evaluate every run on one test set (one target language); mixed_precision "auto" is bf16 on a GPU that has
    it, fp32 elsewhere. Writes each run's JSON and, with `summary`, one JSON of all of them (the workflow's output).
    """
    if not runs:
        raise ValueError("no runs to evaluate")
    precision = inference_precision(mixed_precision)
    shared = shared_inputs(base_model, str(test_data), precision, batch_size)
    for run in runs:  # a missing romanizer or embeddings directory is named before any work
        if run.romanize:
            romanizer(run.romanize, lang)
        if run.setup.new_embeddings:
            run_embeddings(run)
    inputs = [run_inputs(run, shared, lang) for run in runs]
    keys = [fingerprint(run_input) for run_input in inputs]
    previous = [_previous(run) for run in runs]
    results = [p if p is not None and p.get("fingerprint") == key else None for p, key in zip(previous, keys)]
    todo = [i for i, result in enumerate(results) if result is None]
    for i, run in enumerate(runs):
        if results[i] is not None:
            log.info("%s seed %s: finished before with these exact inputs (%s): kept", run.setup.name, run.seed, run.output)
        else:
            log.info("%s seed %s: to compute (%s): %s", run.setup.name, run.seed, run.output,
                     why_recomputed(previous[i], inputs[i]))
    log.info("%s %s->%s: %d runs, %d to compute", task, source or "?", lang, len(runs), len(todo))
    if todo:
        tokenizer = hub.load_tokenizer(base_model, trust_remote_code=trust_remote_code)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        models = EvalModels(base_model, trust_remote_code, device, HALF_DTYPES.get(precision))
        data, encoded, baselines = {}, {}, {}
        for n, i in enumerate(todo, 1):
            run, start = runs[i], time.perf_counter()
            where = f"{task} {source or '?'}->{lang} {run.setup.name} seed {run.seed}"
            head = read_head_config(run.task_dir)
            settings = task_settings(run.task_dir)
            label_names, task_type = head["label_names"], head["task_type"]
            fam = family(task_type)
            if (task_type, run.romanize) not in data:  # the test set, romanized for madx_translit
                examples = data.get((task_type, None)) or fam.read(test_data)[0]
                data[(task_type, None)] = examples
                if run.romanize:
                    examples = romanize_examples(examples, romanizer(run.romanize, lang))
                data[(task_type, run.romanize)] = examples
            examples = data[(task_type, run.romanize)]
            run_tokenizer = models.tokenizer_for(run, tokenizer)
            key = (task_type, tuple(label_names), settings.max_length, settings.doc_stride, run.romanize,
                   id(run_tokenizer))
            if key not in encoded:
                fam.check(examples, label_names)
                encoded[key] = fam.encode(run_tokenizer, examples, label_names, settings, train=False)
            features = encoded[key]
            test_key = (task_type, tuple(label_names), run.romanize)
            if test_key not in baselines:  # the test set's: the same for every run that reads it alike
                baselines[test_key] = fam.baselines(examples, label_names, lang)
            model, used = models.model_for(run, label_names, task_type)
            if run.romanize:
                used["romanized"] = romanizer(run.romanize, lang).identity
            if run_tokenizer is not tokenizer:
                used["embeddings"] = str(embeddings_dir(run.lang_adapter))
            try:
                pred = predict(model, fam, examples, features, label_names, settings, run_tokenizer.pad_token_id,
                               batch_size=batch_size, device=device, mixed_precision=precision)
            except NonFiniteScores as err:
                Path(run.output).unlink(missing_ok=True)  # no earlier number may stand for these inputs
                raise refused(where, run, err, precision) from None
            warnings = fam.warnings(examples, pred)
            for warning in warnings:
                log.warning("%s: %s", where, warning)
            results[i] = {
                "task": task, "source": source, "lang": lang, "setup": run.setup.name, "seed": run.seed,
                "task_type": task_type, **fam.metrics(examples, features, pred, lang),
                "baselines": baselines[test_key], **fam.breakdown(examples, pred, label_names), "warnings": warnings,
                "mixed_precision": precision, "base_model": base_model, "test_data": str(test_data), **used,
                "inputs": inputs[i], "fingerprint": keys[i],
            }
            write_text(Path(run.output), json.dumps(results[i], indent=2) + "\n")
            log.info("[%d/%d] %s: %s; baselines %s (%.1f s)", n, len(todo), where,
                     {k: round(v, 4) for k, v in results[i].items() if k in LOGGED},
                     {k: round(v, 4) for k, v in baselines[test_key].items()}, time.perf_counter() - start)
    if summary is not None:
        write_text(Path(summary), json.dumps({"task": task, "source": source, "lang": lang, "results": results},
                                             indent=2) + "\n")
    return results


class EvaluationError(MadxError, ValueError):
    """A run whose result would be no valid number: refused, with the reason."""


def refused(where: str, run: Run, err: Exception, precision: str) -> EvaluationError:
    """The error for a run whose model gives NaN or infinite scores: no result, and what to do."""
    stacked = " and ".join(str(d) for d in (run.lang_adapter, run.task_dir) if d is not None)
    overflow = (f"; or float16 overflows (mixed_precision {precision}): evaluate with --mixed-precision bf16 or no"
                if precision == "fp16" else "")
    return EvaluationError(f"{where}: {err}, so no result is written ({run.output}): the weights it reads ({stacked}) "
                           f"are broken: retrain them (delete the directory and rerun snakemake){overflow}")


def evaluate(base_model: str, setup: str, task_dir: str | Path, test_data, output: str | Path, *, lang: str, task: str,
             source: str | None = None, seed: int | None = None, lang_adapter: str | Path | None = None,
             romanize: str | None = None, batch_size: int = 64, mixed_precision: str = "auto",
             trust_remote_code: bool = False) -> dict:
    """Evaluate one setup on a test set (evaluate_runs with one run)."""
    run = Run(setup, seed, Path(task_dir), Path(lang_adapter) if lang_adapter else None, Path(output), romanize)
    [result] = evaluate_runs(base_model, [run], test_data, lang=lang, task=task, source=source, batch_size=batch_size,
                             mixed_precision=mixed_precision, trust_remote_code=trust_remote_code)
    return result
