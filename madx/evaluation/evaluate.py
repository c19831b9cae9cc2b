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

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..adapters.embeddings import embeddings_dir
from ..core.errors import InputError, MadxError
from ..core.files import write_text
from ..core.settings import AUTO_PRECISION, EVAL_BATCH_SIZE, MIXED_PRECISION
from ..core.tensors import HALF_DTYPES
from ..data import hub
from ..data.romanize import romanizer
from ..tasks.families import Family, NonFiniteScores, family, predict, read_head_config, romanize_examples
from ..training.accelerator import check_mixed_precision
from .fingerprints import fingerprint, previous_result, run_inputs, shared_inputs, task_settings, why_recomputed
from .models import EvalModels, run_embeddings
from .runs import Run

log = logging.getLogger(__name__)


def inference_precision(mixed_precision: str) -> str:
    """"auto" -> "bf16" on a CUDA GPU with bf16, else "no"; anything else is checked against this machine."""
    if mixed_precision == AUTO_PRECISION:
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    if mixed_precision not in MIXED_PRECISION:
        raise InputError(f"mixed_precision={mixed_precision!r}; use auto or one of {MIXED_PRECISION}")
    check_mixed_precision(mixed_precision)
    return mixed_precision



def evaluate_runs(
    base_model: str,
    runs: list[Run],
    test_data,
    *,
    lang: str,
    task: str,
    source: str | None = None,
    summary: str | Path | None = None,
    related: dict[str, float | None] | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
    mixed_precision: str = AUTO_PRECISION,
    trust_remote_code: bool = False,
) -> list[dict]:
    """Evaluate every run on one test set (one target language); mixed_precision "auto" is bf16 on a GPU that has
    it, fp32 elsewhere. Writes each run's JSON and, with `summary`, one JSON of all of them (the workflow's output).
    A run whose earlier result carries the fingerprint of its current inputs is kept, not redone. `related`
    ({lang: URIEL distance or None}, nearest first) is what the related-language runs stack, for their record.
    """
    if not runs:
        raise ValueError("no runs to evaluate")
    precision = inference_precision(mixed_precision)
    shared = shared_inputs(base_model, str(test_data), precision, batch_size)
    runs, from_hub = zip(*(run.resolved() for run in runs))  # adapters by hub id: their snapshots and commits
    for run, found in zip(runs, from_hub):
        for entry in found:
            log.info("%s seed %s: %s resolved to commit %s (%s)", run.setup.name, run.seed, entry["id"],
                     entry["commit"], entry["snapshot"])
    for run in runs:  # a missing romanizer or embeddings directory is named before any work
        if run.romanize:
            romanizer(run.romanize, lang)
        if run.setup.new_embeddings:
            run_embeddings(run)
    inputs = [{**run_inputs(run, shared, lang), **hub_inputs(found)} for run, found in zip(runs, from_hub)]
    chosen = related_languages(runs, lang, related)
    results = [_kept(run, run_input) for run, run_input in zip(runs, inputs)]
    for i, result in enumerate(results):  # a result kept from before the record had its related languages
        if result is not None and with_related(runs[i], result, chosen) != result:
            results[i] = with_related(runs[i], result, chosen)
            write_text(Path(runs[i].output), json.dumps(results[i], indent=2) + "\n")
    todo = [i for i, result in enumerate(results) if result is None]
    log.info("%s %s->%s: %d runs, %d to compute", task, source or "?", lang, len(runs), len(todo))
    if todo:
        job = Job(task, source, lang, base_model, str(test_data), batch_size, precision,
                  torch.device("cuda" if torch.cuda.is_available() else "cpu"))
        tokenizer = hub.load_tokenizer(base_model, trust_remote_code=trust_remote_code)
        models = EvalModels(base_model, trust_remote_code, job.device, HALF_DTYPES.get(precision))
        test = TestSet(test_data, lang)
        for n, i in enumerate(todo, 1):
            start = time.perf_counter()
            result, scores = job.evaluate(runs[i], inputs[i], models, test, tokenizer)
            results[i] = with_related(runs[i], result, chosen)
            write_text(Path(runs[i].output), json.dumps(results[i], indent=2) + "\n")
            log.info("[%d/%d] %s: %s; baselines %s (%.1f s)", n, len(todo), job.where(runs[i]),
                     {k: round(v, 4) for k, v in scores.items()},
                     {k: round(v, 4) for k, v in results[i]["baselines"].items()}, time.perf_counter() - start)
    if summary is not None:
        write_text(Path(summary), json.dumps({"task": task, "source": source, "lang": lang, "results": results},
                                             indent=2) + "\n")
    return results


def related_languages(runs: list[Run], lang: str, related: dict | None) -> list[dict] | None:
    """The related languages the related-language runs stack from (nearest first, with their URIEL distances),
    logged; None when no run stacks them."""
    if not related or not any(run.setup.related for run in runs):
        return None
    log.info("%s: related languages %s", lang, ", ".join(
        code + (f" (URIEL distance {d:.3f})" if d is not None else " (named in the config)")
        for code, d in related.items()))
    return [{"lang": code, "uriel_distance": distance} for code, distance in related.items()]


def with_related(run: Run, result: dict, chosen: list[dict] | None) -> dict:
    """A related-language run's result with the languages it stacked (madx_nearest the first, madx_avg and
    madx_emea the first k: as many as its adapters) and their distances; any other result as it is."""
    if not chosen or not run.setup.related:
        return result
    return {**result, "related": chosen[:len(run.lang_adapters)]}


def hub_inputs(found: list[dict]) -> dict:
    """The hub ids a run's adapters were given as, and the commits they resolved to (none for local directories)."""
    return {"hub": [{"id": entry["id"], "commit": entry["commit"]} for entry in found]} if found else {}


def _kept(run: Run, inputs: dict) -> dict | None:
    """The run's earlier result when it carries the fingerprint of these inputs; the log says which, and why not."""
    previous = previous_result(run)
    if previous is not None and previous.get("fingerprint") == fingerprint(inputs):
        log.info("%s seed %s: finished before with these exact inputs (%s): kept", run.setup.name, run.seed, run.output)
        return previous
    log.info("%s seed %s: to compute (%s): %s", run.setup.name, run.seed, run.output, why_recomputed(previous, inputs))
    return None


class TestSet:
    """One test file as the runs of a job read it, each reading made once: its examples per (task type,
    romanizer), their encoding per (labels, lengths, tokenizer) and the baselines of each reading."""

    def __init__(self, path, lang: str):
        self.path, self.lang = path, lang
        self._examples, self._encoded, self._baselines = {}, {}, {}

    def examples(self, fam: Family, romanize: str | None) -> list:
        """The test examples, romanized for a romanizing setup (madx_translit)."""
        key = (fam.task_type, romanize)
        if key not in self._examples:
            plain = self._examples.get((fam.task_type, None)) or fam.read(self.path)[0]
            self._examples[(fam.task_type, None)] = plain
            self._examples[key] = romanize_examples(plain, romanizer(romanize, self.lang)) if romanize else plain
        return self._examples[key]

    def features(self, fam: Family, run: Run, label_names: list[str], settings, tokenizer, own_tokenizer: bool):
        """The examples encoded as the run's task was trained (its lengths), with the base tokenizer or, for
        madx_emb, its language adapter's own (`own_tokenizer`)."""
        key = (fam.task_type, tuple(label_names), settings.max_length, settings.doc_stride, run.romanize,
               str(embeddings_dir(run.lang_adapter)) if own_tokenizer else None)
        if key not in self._encoded:
            examples = self.examples(fam, run.romanize)
            fam.check(examples, label_names)
            self._encoded[key] = fam.encode(tokenizer, examples, label_names, settings, train=False)
        return self._encoded[key]

    def baselines(self, fam: Family, romanize: str | None, label_names: list[str]) -> dict:
        """The test set's majority and chance baselines: the same for every run that reads it alike."""
        key = (fam.task_type, tuple(label_names), romanize)
        if key not in self._baselines:
            self._baselines[key] = fam.baselines(self.examples(fam, romanize), label_names, self.lang)
        return self._baselines[key]


@dataclass(frozen=True)
class Job:
    """One evaluation job: a task from a source on one target's test set, how it runs, and where."""

    task: str
    source: str | None
    lang: str
    base_model: str
    test_data: str
    batch_size: int
    precision: str
    device: torch.device

    def where(self, run: Run) -> str:
        return f"{self.task} {self.source or '?'}->{self.lang} {run.setup.name} seed {run.seed}"

    def evaluate(self, run: Run, inputs: dict, models: EvalModels, test: TestSet, base_tokenizer
                 ) -> tuple[dict, dict]:
        """The run's result (its metrics, the test set's baselines, per-class scores, warnings and what it
        stacked) and its numbers for the log; refused (no result) when the model's scores are not finite."""
        head = read_head_config(run.task_dir)
        label_names, task_type = head["label_names"], head["task_type"]
        fam, settings = family(task_type), task_settings(run.task_dir)
        tokenizer = models.tokenizer_for(run, base_tokenizer)
        examples = test.examples(fam, run.romanize)
        features = test.features(fam, run, label_names, settings, tokenizer, tokenizer is not base_tokenizer)
        baselines = test.baselines(fam, run.romanize, label_names)
        model, used = models.model_for(run, label_names, task_type)
        if run.romanize:
            used["romanized"] = romanizer(run.romanize, self.lang).identity
        if tokenizer is not base_tokenizer:
            used["embeddings"] = str(embeddings_dir(run.lang_adapter))
        try:
            pred = predict(model, fam, examples, features, label_names, settings, tokenizer.pad_token_id,
                           batch_size=self.batch_size, device=self.device, mixed_precision=self.precision,
                           adapt=models.adapt)
        except NonFiniteScores as err:
            Path(run.output).unlink(missing_ok=True)  # no earlier number may stand for these inputs
            raise refused(self.where(run), run, err, self.precision) from None
        if models.adapt is not None:
            used["emea"] = models.adapt.record()
        warnings = fam.warnings(examples, pred)
        for warning in warnings:
            log.warning("%s: %s", self.where(run), warning)
        metrics = fam.metrics(examples, features, pred, self.lang)
        result = {
            "task": self.task, "source": self.source, "lang": self.lang, "setup": run.setup.name, "seed": run.seed,
            "task_type": task_type, **metrics, "baselines": baselines, **fam.breakdown(examples, pred, label_names),
            "warnings": warnings, "mixed_precision": self.precision, "base_model": self.base_model,
            "test_data": self.test_data, **used, "inputs": inputs, "fingerprint": fingerprint(inputs),
        }
        return result, {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class EvaluationError(MadxError, ValueError):
    """A run whose result would be no valid number: refused, with the reason."""


def refused(where: str, run: Run, err: Exception, precision: str) -> EvaluationError:
    """The error for a run whose model gives NaN or infinite scores: no result, and what to do."""
    stacked = " and ".join(str(d) for d in (*run.lang_adapters, run.task_dir))
    overflow = (f"; or float16 overflows (mixed_precision {precision}): evaluate with --mixed-precision bf16 or no"
                if precision == "fp16" else "")
    return EvaluationError(f"{where}: {err}, so no result is written ({run.output}): the weights it reads ({stacked}) "
                           f"are broken: retrain them (delete the directory and rerun snakemake){overflow}")


def evaluate(base_model: str, setup: str, task_dir: str | Path, test_data, output: str | Path, *, lang: str, task: str,
             source: str | None = None, seed: int | None = None, lang_adapter: str | Path | None = None,
             romanize: str | None = None, batch_size: int = EVAL_BATCH_SIZE, mixed_precision: str = AUTO_PRECISION,
             trust_remote_code: bool = False) -> dict:
    """Evaluate one setup on a test set (evaluate_runs with one run)."""
    run = Run(setup, seed, Path(task_dir), lang_adapter, Path(output), romanize)
    [result] = evaluate_runs(base_model, [run], test_data, lang=lang, task=task, source=source, batch_size=batch_size,
                             mixed_precision=mixed_precision, trust_remote_code=trust_remote_code)
    return result
