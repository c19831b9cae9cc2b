"""The parameter budget of a run (Houlsby et al. 2019, section 3): per setup, what a training trains and what
serving every task and language of the run stores, against copies of the base model, with the scores beside it.

Houlsby et al. report that adapters for 9 GLUE tasks cost about 1.3 times one model against 9 copies for full
fine-tuning, within about half a point; the table says the same for the run's own tasks, sources and targets.
Everything is counted from the weights files the evaluations read (their JSONs name them), for one seed: seeds
are replicates of an experiment, not models one serves.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ..adapters.counting import stored_parameters
from ..core.setups import SETUPS
from ..core.sources import looks_like_a_path
from .scores import BASELINES, baselines


@dataclass
class Budget:
    setup: str
    served: int  # the (task, source) pairs it has a training for
    trained_per_task: float | None  # mean over its task trainings: adapter + head, fusion + head, or a whole model
    trained_per_language: float | None  # mean over the language adapters it stacks (their own embeddings too)
    stored: int | None  # the base once (not for full_ft) + every distinct artifact; None where one is unreadable
    scores: dict = field(default_factory=dict)  # task -> mean score x100 over the targets other than the source


class Counter:
    """Parameters per weights directory, each read once; None for one that is not there (deleted, or remote)."""

    def __init__(self):
        self.found: dict[str, int | None] = {}

    def __call__(self, directory: str | None) -> int | None:
        if directory is None:
            return None
        if directory not in self.found:
            self.found[directory] = stored_parameters(directory) if Path(directory).is_dir() else None
        return self.found[directory]


def base_parameters(base_model: str, count: Counter) -> int | None:
    """The base model's parameters: a local directory's weights, or a hub id's from the local Hugging Face cache
    (the jobs that ran downloaded it there); None when neither has it."""
    if looks_like_a_path(base_model):
        return count(base_model)
    from huggingface_hub import try_to_load_from_cache

    for name in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"):
        found = try_to_load_from_cache(base_model, name)
        if isinstance(found, str):
            return count(str(Path(found).parent))
    return None


def _trained_dir(row: dict) -> str | None:
    """The directory a row's own task training wrote its trained weights to (a fusion's: fusion and head)."""
    artifacts = row["artifacts"]
    return artifacts.get("full_model") or artifacts.get("task_adapter")


def _language_costs(served: list[dict], count: Counter) -> dict[str, int | None]:
    """Per language adapter the runs stack: its parameters, with its own input embeddings where it has them."""
    costs = {}
    for row in served:
        artifacts = row["artifacts"]
        if artifacts.get("lang_adapter"):
            parts = [count(d) for d in (artifacts["lang_adapter"], artifacts.get("embeddings")) if d]
            costs[artifacts["lang_adapter"]] = None if None in parts else sum(parts)
        for directory in artifacts.get("lang_adapters") or ():  # madx_avg: each adapter it averages
            costs[directory] = count(directory)
    return costs


def _mean(values: list) -> float | None:
    return statistics.fmean(values) if values and None not in values else None


def _transfer(rows: list[dict]) -> list[dict]:
    """The runs on targets other than the source (all of them, for a task evaluated on its source only)."""
    return [r for r in rows if r["lang"] != r["source"]] or rows


def _task_scores(rows: list[dict]) -> dict[str, float]:
    """task -> mean score x100 over seeds and the targets other than the source."""
    tasks = dict.fromkeys(r["task"] for r in rows)
    return {task: 100 * statistics.fmean(r["score"] for r in _transfer([r for r in rows if r["task"] == task]))
            for task in tasks}


def budgets(rows: list[dict]) -> tuple[list[Budget], int | None]:
    """One Budget per setup that ran (in the report's order), and the base model's parameter count."""
    count = Counter()
    base_model = rows[0]["artifacts"].get("base_model")
    base = base_parameters(base_model, count) if base_model else None
    seed = min(r["seed"] for r in rows)
    out = []
    for setup in (s for s in SETUPS if any(r["setup"] == s for r in rows)):
        setup_rows = [r for r in rows if r["setup"] == setup]
        served = [r for r in setup_rows if r["seed"] == seed]
        trained = [count(d) for d in dict.fromkeys(_trained_dir(r) for r in served)]
        fused = [count(d) for d in dict.fromkeys(d for r in served for d in r["artifacts"].get("fused_adapters") or ())]
        languages = _language_costs(served, count)
        parts = [*trained, *fused, *languages.values()]
        own_base = 0 if SETUPS[setup].training.full_model else base  # full_ft's copies are whole models
        stored = None if None in parts or own_base is None else sum(parts) + own_base
        served_pairs = len({(r["task"], r["source"]) for r in served})
        out.append(Budget(setup, served_pairs, _mean(trained), _mean(list(languages.values())), stored,
                          _task_scores(setup_rows)))
    return out, base


def _count(n: float | None) -> str:
    return "–" if n is None else f"{n:,.0f}"


def budget_section(rows: list[dict]) -> list[str]:
    """The budget table: per setup its parameters and, per task, its score; each task's baselines below."""
    found, base = budgets(rows)
    if base is None and all(b.stored is None and b.trained_per_task is None for b in found):
        return ["## Parameter budget", "", "Not counted: the weights files the evaluations name are not here (write "
                "the report where the workflow ran).", ""]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    metric = {r["task"]: r["metric"] for r in rows}
    n_tasks, n_sources = len(tasks), len({r["source"] for r in rows})
    lines = ["## Parameter budget", "",
             f"Per setup, for one seed of this run's {n_tasks} task(s) from {n_sources} source(s): the parameters one "
             "task training trains (a task adapter and head; madx_fusion: its fusion layers and head, over task "
             "adapters trained for madx; full_ft: the whole model), mean over the setup's trainings, and one "
             "language adapter (its embeddings too, "
             "where it has its own), and what serving every task, source and target stores: the base model once "
             "plus every adapter, head and fusion the setup uses (full_ft: a fine-tuned copy of the whole model per "
             f"task and source, and no base), also as copies of the base ({_count(base)} parameters). Rows serving "
             "different (task, source) pairs (a task's own `setups`) are not comparable as they stand: each pair "
             "adds a whole copy to full_ft's store and about its trained-per-task parameters to an adapter setup's. "
             "Houlsby et al. (2019) report about 1.3 copies for adapters on 9 GLUE tasks against 9 for full "
             "fine-tuning, within about half a point. Scores: x 100, mean over seeds and the targets other than the "
             "source (a setup run on some targets only, as the new-script ones, over those); the baselines below "
             "are the mean over each task's targets other than the source.", "",
             "| setup | (task, source) pairs | trained per task | trained per language | stored | copies of the base | "
             + " | ".join(f"{t} ({metric[t]})" for t in tasks) + " |",
             "|---|---|---|---|---|---|" + "---|" * n_tasks]
    for b in found:
        copies = f"{b.stored / base:.2f}" if b.stored is not None and base else "–"
        scores = [f"{b.scores[t]:.1f}" if t in b.scores else "–" for t in tasks]
        lines.append(f"| {b.setup} | {b.served} | {_count(b.trained_per_task)} | {_count(b.trained_per_language)} | "
                     f"{_count(b.stored)} | {copies} | " + " | ".join(scores) + " |")
    for name in BASELINES:
        cells = []
        for task in tasks:
            task_rows = [r for r in rows if r["task"] == task]
            targets = {r["lang"] for r in _transfer(task_rows)}
            values = [found_base.get(name) for lang, found_base in baselines(task_rows).items() if lang in targets]
            cells.append(f"{statistics.fmean(values):.1f}" if values and None not in values else "–")
        lines.append(f"| *{name}* | | | | | | " + " | ".join(cells) + " |")
    return lines + [""]
