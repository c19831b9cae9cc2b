"""The numbers behind the report: evaluation results as rows, and the means the tables and plots show."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from collections import defaultdict
from pathlib import Path

from ..core.errors import InputError
from ..core.files import LANG_RECORD
from ..core.settings import NEW_EMBEDDINGS
from ..core.setups import EVAL_SETUPS
from ..tasks.families import DEFAULT_TASK_TYPE, main_metric

# majority_baseline, chance_baseline: the scores (same metric and scale as `score`) of always answering the test
# set's most frequent label and of answering at random; they depend on the test set only (task and target)
CSV_FIELDS = ("task", "source", "lang", "setup", "seed", "metric", "score", "majority_baseline", "chance_baseline",
              "precision", "recall", "f1", "accuracy", "exact_match", "n_sentences", "n_tokens", "n_examples")
BASELINES = ("majority", "chance")
# what an evaluation read, as its JSON names it: the base, and the run's fine-tuned model, or its task adapter (a
# fusion's directory: fusion and head), the adapters a fusion fuses (a list), the language adapter and its own
# embeddings, or the language adapters madx_avg averages (a list)
ARTIFACTS = ("base_model", "full_model", "task_adapter", "fused_adapters", "lang_adapter", "embeddings",
             "lang_adapters")
PER_TYPE_FIELDS = ("task", "source", "lang", "setup", "seed", "type", "f1", "support")


def read_result(path) -> dict:
    """An evaluation JSON; one that does not read as one is an error naming the file and what to do."""
    try:
        content = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not an evaluation result ({err}); delete it and rerun the evaluation "
                         "(snakemake recomputes it)") from None
    if not isinstance(content, dict) or not ("results" in content or "task" in content):
        raise InputError(f"{path}: not an evaluation result (no task or results); give madx evaluate's JSON files")
    return content


def collect(eval_files: list[Path], source_language: str | None = None) -> list[dict]:
    """One row per evaluation: a run's JSON, or every run listed in an evaluation job's JSON ("results"); a run
    found in both counts once. `source_language` stands in for results that do not name their source."""
    rows, seen = [], set()
    for path in sorted(eval_files):
        content = read_result(path)
        for result in content["results"] if "results" in content else [content]:
            key = tuple(result.get(k) for k in ("task", "source", "lang", "setup", "seed"))
            if key in seen:
                continue
            seen.add(key)
            metric = main_metric(result.get("task_type") or DEFAULT_TASK_TYPE)
            row = {**{k: result.get(k) for k in CSV_FIELDS}, "metric": metric, "score": result[metric]}
            row["source"] = row["source"] or source_language
            baselines = result.get("baselines") or {}  # absent in results written before baselines were
            row.update({f"{name}_baseline": baselines.get(name) for name in BASELINES})
            for key, empty in (("per_type", {}), ("per_class", {}), ("confusion", {}), ("warnings", [])):
                row[key] = result.get(key) or empty
            row["artifacts"] = {key: result.get(key) for key in ARTIFACTS}
            row["emea"] = result.get("emea")  # madx_emea: the weights it learned (evaluation/emea.py)
            row["related"] = result.get("related")  # related-language runs: the languages, with URIEL distances
            rows.append(row)
    return rows


def sources_of(rows: list[dict]) -> list:
    return list(dict.fromkeys(r["source"] for r in rows))


def mean_over_sources(rows: list[dict]) -> list[dict]:
    """Per (target, setup, source) the mean over seeds, for every source other than the target: the rows of the
    MAD-X paper's Table 2 layout (a target's score is its mean over the other source languages)."""
    seeds = defaultdict(list)
    for r in rows:
        if r["source"] != r["lang"]:
            seeds[(r["lang"], r["setup"], r["source"])].append(r["score"])
    return [{"lang": lang, "setup": setup, "source": source, "score": statistics.fmean(values), "metric": rows[0]["metric"]}
            for (lang, setup, source), values in seeds.items()]


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """The mean and the sample std; one value has no spread (None), never a std of 0."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def baselines(rows: list[dict]) -> dict[str, dict[str, float | None]]:
    """Per target language, its test set's baselines x100 ({"majority": ..., "chance": ...}; None where no result
    recorded one). They depend on the test set only, so every run on a target gives the same."""
    out = {}
    for r in rows:
        found = out.setdefault(r["lang"], dict.fromkeys(BASELINES))
        for name in BASELINES:
            value = r.get(f"{name}_baseline")
            if value is not None and found[name] is None:
                found[name] = 100 * value
    return out


def grid(rows: list[dict], source_language: str | None) -> tuple[dict, list, list]:
    """One task's scores x100 by (lang, setup), the setups present (paper order), languages (source first)."""
    scores = defaultdict(list)
    for r in rows:
        scores[(r["lang"], r["setup"])].append(100 * r["score"])
    setups = [s for s in EVAL_SETUPS if any(k[1] == s for k in scores)]
    langs = sorted({k[0] for k in scores}, key=lambda lang: (lang != source_language, lang))
    return scores, setups, langs


def matrix_scores(rows: list[dict], setup: str) -> tuple[list, list, dict]:
    """One setup's source x target matrix (the MAD-X paper's Figure 3): (sources, targets with the sources first,
    {(source, target): mean over seeds x 100})."""
    seeds = defaultdict(list)
    for r in rows:
        if r["setup"] == setup:
            seeds[(r["source"], r["lang"])].append(100 * r["score"])
    sources = sources_of(rows)
    targets = sorted({t for _, t in seeds}, key=lambda t: (t not in sources, sources.index(t) if t in sources else 0, t))
    return sources, targets, {key: statistics.fmean(values) for key, values in seeds.items()}


def main_setup(rows: list[dict]) -> str:
    """The first setup present, in the paper's order (madx when it ran)."""
    return next(s for s in EVAL_SETUPS if any(r["setup"] == s for r in rows))


def transfer_rows(rows: list[dict]) -> list[dict]:
    """The runs a per-target summary counts: with several sources, a target's in-language run is no transfer."""
    several = len(sources_of(rows)) > 1
    return [r for r in rows if not (several and r["source"] == r["lang"])]


def per_class_f1(rows: list[dict], setup: str) -> tuple[list, list, dict]:
    """Classification and multiple choice: (labels, target languages, {(lang, label): mean F1 x100}) of one setup,
    over seeds (and the other sources)."""
    f1, labels = defaultdict(list), {}
    for r in transfer_rows([r for r in rows if r["setup"] == setup]):
        for label, stats in r["per_class"].items():
            labels[label] = None
            f1[(r["lang"], label)].append(100 * stats["f1"])
    langs = sorted({lang for lang, _ in f1})
    return list(labels), langs, {key: statistics.fmean(values) for key, values in f1.items()}


def confusion_sums(rows: list[dict], setup: str) -> dict[str, tuple[list, dict]]:
    """Per target language, one setup's confusion matrix summed over seeds (and the other sources):
    (labels, {(gold, predicted): count})."""
    out = {}
    for r in transfer_rows([r for r in rows if r["setup"] == setup]):
        if not r["confusion"]:
            continue
        labels, counts = out.setdefault(r["lang"], ({}, defaultdict(int)))
        names = r["confusion"]["labels"]
        labels.update(dict.fromkeys(names))
        for gold, row in zip(names, r["confusion"]["matrix"]):
            for predicted, count in zip(names, row):
                counts[(gold, predicted)] += count
    return {lang: (list(labels), dict(counts)) for lang, (labels, counts) in sorted(out.items())}


def per_type_rows(rows: list[dict]) -> list[dict]:
    """One row per (evaluation, entity type): NER's F1 per type."""
    return [{**{k: r[k] for k in PER_TYPE_FIELDS[:5]}, "type": name, "f1": stats["f1"], "support": stats["support"]}
            for r in rows for name, stats in sorted(r["per_type"].items())]


def adapter_label(info: dict) -> str:
    """A language adapter's name in the report: its language, and what it is when it is a new-script setup's."""
    if info.get("romanized"):
        return f"{info['lang']} (romanized)"
    if info.get("embeddings"):
        return f"{info['lang']} (new embeddings)" if info["embeddings"].get("mode") == NEW_EMBEDDINGS else \
            f"{info['lang']} (trained embedding rows)"
    return info["lang"]


@dataclass(frozen=True)
class AdapterRecord:
    label: str  # adapter_label: the language, and what the adapter is when it is a new-script setup's
    new_script: bool  # trained on the romanized corpus or with new embeddings: its language's remedy already
    stats: dict


def adapter_records(adapter_dirs: list[Path], key: str) -> list[AdapterRecord]:
    """training.json[key] of each trained language adapter that recorded it ("coverage": the base tokenizer's
    coverage; "heldout": held-out MLM loss and perplexity with the adapter and for the base), by label."""
    rows = []
    for directory in adapter_dirs:
        info_file = Path(directory) / LANG_RECORD
        if info_file.is_file():
            info = json.loads(info_file.read_text())
            if info.get(key):
                new_script = bool(info.get("romanized") or info.get("embeddings"))
                rows.append(AdapterRecord(adapter_label(info), new_script, info[key]))
    return sorted(rows, key=lambda row: row.label)
