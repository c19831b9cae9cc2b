"""Zero-shot evaluation: every (setup, seed) of one (task, source, target) in one process.

The base model is loaded once; each run swaps its language adapter, task adapter and head in memory
(full_ft loads its own fine-tuned model). Each run's result is its own JSON file, stamped with a
fingerprint of everything the number depends on (the weights' and the test data's bytes, the
precision, madx's version): a run whose file carries the current fingerprint is reused, never redone,
so a rerun after adding a seed or retraining one language adapter computes only what changed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import torch

from . import __version__, hf
from .accelerator import HALF_DTYPES, check_mixed_precision
from .files import write_text
from .io import load_adapter, read_adapter_config
from .embeddings import EMBEDDINGS_DIR, EmbeddingLoadError, embeddings_dir, load_embeddings, swap_input_embeddings
from .families import family, predict
from .model import activate, delete_adapter, madx_state
from .settings import MIXED_PRECISION, TaskTraining
from .setups import EVAL_LANG_ADAPTER, EVAL_SETUPS
from .heads import load_head, read_head_config
from .task import FULL_MODEL_DIR
from .translit import romanize_examples, romanizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Run:
    """One evaluation: a setup's trained task (and the language adapter under it) on the test set."""

    setup: str
    seed: int | None
    task_dir: Path
    lang_adapter: Path | None
    output: Path  # this run's result JSON
    romanize: str | None = None  # madx_translit: the romanizer the test data is read through

    def __post_init__(self):
        if self.setup not in EVAL_SETUPS:
            raise ValueError(f"setup {self.setup!r}; evaluation setups are {EVAL_SETUPS}")
        if (self.setup == "madx_translit") != bool(self.romanize):
            raise ValueError(f"setup {self.setup} (seed {self.seed}): " + (
                "needs the target's romanizer (--romanize)" if self.romanize is None else
                "reads the test data as it is; only madx_translit romanizes it"))
        if (EVAL_LANG_ADAPTER[self.setup] is None) != (self.lang_adapter is None):
            need = "needs a language adapter" if self.lang_adapter is None else "takes no language adapter"
            raise ValueError(f"setup {self.setup} (seed {self.seed}) {need}")


def inference_precision(mixed_precision: str) -> str:
    """"auto" -> "bf16" on a CUDA GPU with bf16, else "no"; anything else is checked against this machine."""
    if mixed_precision == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    if mixed_precision not in MIXED_PRECISION:
        raise ValueError(f"mixed_precision={mixed_precision!r}; use auto or one of {MIXED_PRECISION}")
    check_mixed_precision(mixed_precision)
    return mixed_precision


# ---- what a result depends on


def content_digest(path: Path) -> str:
    """sha256 of a file's bytes, or of a directory's files (relative names and bytes, in sorted order)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    stats = [f.stat() for f in files]
    listing = tuple((str(f.relative_to(path) if path.is_dir() else f.name), str(f), st.st_size, st.st_mtime_ns)
                    for f, st in zip(files, stats))
    return _digest(listing)  # read once per process for the same files, sizes and times


@functools.lru_cache(maxsize=None)
def _digest(listing: tuple) -> str:
    digest = hashlib.sha256()
    for name, file, _, _ in listing:
        digest.update(name.encode() + b"\0")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _digest_or_name(spec: str) -> str:
    """A local file or directory: its bytes; a hub id or hub: spec: the name itself."""
    path = Path(spec)
    return content_digest(path.resolve()) if not str(spec).startswith("hub:") and path.exists() else str(spec)


def shared_inputs(base_model: str, test_data: str, precision: str, batch_size: int) -> dict:
    """What every run of one evaluation job depends on: the base model, the test data and how it is run."""
    return {"madx": __version__, "base_model": _digest_or_name(base_model), "test": _digest_or_name(str(test_data)),
            "precision": precision, "batch_size": batch_size}


def fingerprint(run: Run, shared: dict, lang: str | None = None) -> str:
    """sha256 of everything a run's result depends on: `shared_inputs`, the run's own weights (a language
    adapter's embeddings and tokenizer included) and the romanizer (with its version) it reads the test data with."""
    parts = {**shared, "setup": run.setup, "task_dir": content_digest(Path(run.task_dir).resolve()),
             "lang_adapter": content_digest(Path(run.lang_adapter).resolve()) if run.lang_adapter else None}
    if run.romanize:
        parts["romanize"] = romanizer(run.romanize, lang).identity
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _finished(run: Run, key: str) -> dict | None:
    """The run's result if its file exists and was computed from exactly these inputs."""
    try:
        result = json.loads(Path(run.output).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return result if result.get("fingerprint") == key else None


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
        if run.setup != "madx_emb":
            return None
        key = str(Path(run.lang_adapter).resolve())
        if key not in self.embeddings:
            directory = run_embeddings(run)
            config = hf.load_config(self.base_model, trust_remote_code=self.trust_remote_code)
            self.embeddings[key] = load_embeddings(directory, hidden_size=config.hidden_size)
        return self.embeddings[key]

    def _model(self, label_names: list[str], task_type: str) -> torch.nn.Module:
        key = (task_type, tuple(label_names))
        if key not in self.shared:
            model = hf.load_task_model(self.base_model, family(task_type).auto_class, label_names,
                                       trust_remote_code=self.trust_remote_code)
            self.shared[key] = model.to(device=self.device, dtype=self.dtype).eval()  # inference only: no fp32 copy
        return self.shared[key]

    def model_for(self, run: Run, label_names: list[str], task_type: str) -> tuple[torch.nn.Module, dict]:
        """The model for `run`, ready to predict, and what it stacks (for the record)."""
        if run.setup == "full_ft":
            model = hf.load_finetuned(run.task_dir / FULL_MODEL_DIR, family(task_type).auto_class)
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
        if run.setup == "madx_emb":
            run_embeddings(run)
    keys = [fingerprint(run, shared, lang) for run in runs]
    results = [_finished(run, key) for run, key in zip(runs, keys)]
    todo = [i for i, result in enumerate(results) if result is None]
    for i, run in enumerate(runs):
        if results[i] is not None:
            log.info("%s seed %s: finished before with these exact inputs (%s): kept", run.setup, run.seed, run.output)
    log.info("%s %s->%s: %d runs, %d to compute", task, source or "?", lang, len(runs), len(todo))
    if todo:
        tokenizer = hf.load_tokenizer(base_model, trust_remote_code=trust_remote_code)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        models = EvalModels(base_model, trust_remote_code, device, HALF_DTYPES.get(precision))
        data, encoded = {}, {}
        for n, i in enumerate(todo, 1):
            run, start = runs[i], time.perf_counter()
            head = read_head_config(run.task_dir)
            task_file = Path(run.task_dir) / "task.json"  # absent for a task adapter AdapterHub trained
            task_info = json.loads(task_file.read_text()) if task_file.is_file() else {}
            settings = TaskTraining(**{k: v for k, v in task_info.get("settings", {}).items()
                                       if k in TaskTraining.__dataclass_fields__})
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
            model, used = models.model_for(run, label_names, task_type)
            if run.romanize:
                used["romanized"] = romanizer(run.romanize, lang).identity
            if run_tokenizer is not tokenizer:
                used["embeddings"] = str(embeddings_dir(run.lang_adapter))
            pred = predict(model, fam, examples, features, label_names, settings, run_tokenizer.pad_token_id,
                           batch_size=batch_size, device=device, mixed_precision=precision)
            results[i] = {
                "task": task, "source": source, "lang": lang, "setup": run.setup, "seed": run.seed,
                "task_type": task_type, **fam.metrics(examples, features, pred, lang),
                "mixed_precision": precision, "base_model": base_model, "test_data": str(test_data), **used,
                "fingerprint": keys[i],
            }
            write_text(Path(run.output), json.dumps(results[i], indent=2) + "\n")
            log.info("[%d/%d] %s %s->%s %s seed %s: %s (%.1f s)", n, len(todo), task, source or "?", lang, run.setup,
                     run.seed, {k: round(v, 4) for k, v in results[i].items()
                                if k in ("f1", "precision", "recall", "accuracy", "exact_match", "windows", "misaligned_answers")},
                     time.perf_counter() - start)
    if summary is not None:
        write_text(Path(summary), json.dumps({"task": task, "source": source, "lang": lang, "results": results},
                                             indent=2) + "\n")
    return results


def evaluate(base_model: str, setup: str, task_dir: str | Path, test_data, output: str | Path, *, lang: str, task: str,
             source: str | None = None, seed: int | None = None, lang_adapter: str | Path | None = None,
             romanize: str | None = None, batch_size: int = 64, mixed_precision: str = "auto",
             trust_remote_code: bool = False) -> dict:
    """Evaluate one setup on a test set (evaluate_runs with one run)."""
    run = Run(setup, seed, Path(task_dir), Path(lang_adapter) if lang_adapter else None, Path(output), romanize)
    [result] = evaluate_runs(base_model, [run], test_data, lang=lang, task=task, source=source, batch_size=batch_size,
                             mixed_precision=mixed_precision, trust_remote_code=trust_remote_code)
    return result
