"""Gather evaluation JSONs into results.csv, report.md (the MAD-X paper's table layout) and a plot."""

from __future__ import annotations

import csv
import io
import json
import logging
import statistics
from collections import defaultdict
from pathlib import Path

from .setups import EVAL_SETUPS
from .files import write_text, write_with

CSV_FIELDS = ("task", "source", "lang", "setup", "seed", "metric", "score", "precision", "recall", "f1", "accuracy",
              "n_sentences", "n_tokens")

PER_TYPE_FIELDS = ("task", "source", "lang", "setup", "seed", "type", "f1", "support")

log = logging.getLogger(__name__)


def collect(eval_files: list[Path], source_language: str | None = None) -> list[dict]:
    """One row per evaluation JSON; `source_language` stands in for results that do not name their source."""
    rows = []
    for path in sorted(eval_files):
        result = json.loads(Path(path).read_text())
        metric = "accuracy" if result.get("task_type") == "pos" else "f1"
        row = {**{k: result.get(k) for k in CSV_FIELDS}, "metric": metric, "score": result[metric]}
        row["source"] = row["source"] or source_language
        row["per_type"] = result.get("per_type") or {}
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


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _grid(rows: list[dict], source_language: str | None) -> tuple[dict, list, list]:
    """One task's scores x100 by (lang, setup), the setups present (paper order), languages (source first)."""
    scores = defaultdict(list)
    for r in rows:
        scores[(r["lang"], r["setup"])].append(100 * r["score"])
    setups = [s for s in EVAL_SETUPS if any(k[1] == s for k in scores)]
    langs = sorted({k[0] for k in scores}, key=lambda lang: (lang != source_language, lang))
    return scores, setups, langs


def _table(title: str, rows: list[dict], source_language: str | None, over: str = "seed") -> list[str]:
    scores, setups, langs = _grid(rows, source_language)
    metric = rows[0]["metric"]
    n = max(len(v) for v in scores.values())
    lines = [f"## {title} ({metric} x 100, mean ± std over {n} {over}{'s' if n > 1 else ''})", "",
             "| language | " + " | ".join(setups) + " |", "|---|" + "---|" * len(setups)]
    target_means = defaultdict(list)
    for lang in langs:
        means = {s: _mean_std(scores[(lang, s)]) for s in setups if scores.get((lang, s))}
        best = max(means, key=lambda s: means[s][0]) if means else None
        cells = []
        for s in setups:
            if s not in means:
                cells.append("–")
                continue
            mean, std = means[s]
            cell = f"{mean:.1f} ± {std:.1f}"
            cells.append(f"**{cell}**" if s == best else cell)
            if lang != source_language:
                target_means[s].append(mean)
        label = f"{lang} (source)" if lang == source_language else lang
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if target_means:
        avg = {s: statistics.fmean(v) for s, v in target_means.items()}
        best = max(avg, key=avg.get)
        cells = [(f"**{avg[s]:.1f}**" if s == best else f"{avg[s]:.1f}") if s in avg else "–" for s in setups]
        lines.append("| avg (targets) | " + " | ".join(cells) + " |")
    return lines + [""]


def matrix(task: str, rows: list[dict], setup: str) -> list[str]:
    """The source x target matrix of one setup (the MAD-X paper's Figure 3), mean over seeds."""
    seeds = defaultdict(list)
    for r in rows:
        if r["setup"] == setup:
            seeds[(r["source"], r["lang"])].append(100 * r["score"])
    sources = sources_of(rows)
    targets = sorted({t for _, t in seeds}, key=lambda t: (t not in sources, sources.index(t) if t in sources else 0, t))
    lines = [f"## {task}: {setup}, source x target ({rows[0]['metric']} x 100, mean over seeds)", "",
             "| source \\ target | " + " | ".join(targets) + " |", "|---|" + "---|" * len(targets)]
    for source in sources:
        cells = [f"{statistics.fmean(seeds[(source, t)]):.1f}" if seeds.get((source, t)) else "–" for t in targets]
        lines.append(f"| {source} | " + " | ".join(cells) + " |")
    return lines + [""]


def per_type_rows(rows: list[dict]) -> list[dict]:
    """One row per (evaluation, entity type): NER's F1 per type."""
    return [{**{k: r[k] for k in PER_TYPE_FIELDS[:5]}, "type": name, "f1": stats["f1"], "support": stats["support"]}
            for r in rows for name, stats in sorted(r["per_type"].items())]


def per_type_section(task: str, rows: list[dict], setup: str) -> list[str]:
    """F1 per entity type and target language for one setup, mean over seeds (and, with several sources, over
    the sources other than the target, as in the mean-over-sources table)."""
    several = len(sources_of(rows)) > 1
    f1 = defaultdict(list)
    for r in per_type_rows([r for r in rows if r["setup"] == setup and not (several and r["source"] == r["lang"])]):
        f1[(r["lang"], r["type"])].append(100 * r["f1"])
    if not f1:
        return []
    types = sorted({t for _, t in f1})
    langs = sorted({lang for lang, _ in f1})
    over = "seeds and other sources" if several else "seeds"
    lines = [f"## {task}: {setup}, F1 per entity type (x 100, mean over {over})", "",
             "| language | " + " | ".join(types) + " |", "|---|" + "---|" * len(types)]
    for lang in langs:
        lines.append(f"| {lang} | " + " | ".join(f"{statistics.fmean(f1[(lang, t)]):.1f}" if f1.get((lang, t))
                                                  else "–" for t in types) + " |")
    return lines + [""]


def _csv(rows: list[dict], fields) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({r["task"] for r in rows})
    fig, axes = plt.subplots(len(tasks), 1, figsize=(9, 3.6 * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks):
        task_rows = [r for r in rows if r["task"] == task]
        several = len(sources_of(task_rows)) > 1
        # several sources: each target's mean over the other sources (± std over sources)
        if several:
            scores, setups, langs = _grid(mean_over_sources(task_rows), None)
        else:
            scores, setups, langs = _grid(task_rows, sources_of(task_rows)[0])
        width = 0.8 / max(len(setups), 1)
        for i, setup in enumerate(setups):
            xs = [j + (i - (len(setups) - 1) / 2) * width for j in range(len(langs))]
            stats = [_mean_std(scores[(lang, setup)]) if scores.get((lang, setup)) else (0.0, 0.0) for lang in langs]
            ax.bar(xs, [m for m, _ in stats], width, yerr=[s for _, s in stats], label=setup, capsize=2)
        ax.set_xticks(range(len(langs)), langs)
        ax.set_ylabel(rows[0]["metric"] + " x 100")
        source = "every other source (mean)" if several else (sources_of(task_rows)[0] or "the source")
        ax.set_title(f"{task}: zero-shot transfer from {source}")
        ax.legend(ncols=len(setups), fontsize=8)
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def coverage_rows(adapter_dirs: list[Path]) -> list[tuple[str, dict]]:
    """(language, coverage stats) from each trained language adapter's training.json."""
    rows = []
    for directory in adapter_dirs:
        info_file = Path(directory) / "training.json"
        if info_file.is_file():
            info = json.loads(info_file.read_text())
            if "coverage" in info:
                rows.append((info["lang"], info["coverage"]))
    return sorted(rows)


def coverage_section(rows: list[tuple[str, dict]]) -> list[str]:
    """Tokenizer coverage per language."""
    from .coverage import UNK_WARNING

    if not rows:
        return []
    lines = ["## Tokenizer coverage", "",
             f"Share of unknown tokens and sub-words per word under the base tokenizer (a sample of each corpus). "
             f"Above {100 * UNK_WARNING:.0f}% unknown, a language's script is badly covered: MAD-X cannot fix that.", "",
             "| language | unknown tokens | sub-words per word | |", "|---|---|---|---|"]
    for lang, stats in rows:
        flag = "**badly covered script**" if stats["unk_rate"] > UNK_WARNING else ""
        lines.append(f"| {lang} | {100 * stats['unk_rate']:.1f}% | {stats['subwords_per_word']:.2f} | {flag} |")
    return lines + [""]


def write_report(eval_files: list[Path], out_dir: str | Path, *, source_language: str | None = None,
                 title: str = "madx results", notes: str = "", adapter_dirs: list[Path] = ()) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = collect(eval_files, source_language)
    if not rows:
        raise ValueError("no evaluation results to report")
    write_text(out_dir / "results.csv", _csv(rows, CSV_FIELDS))
    write_text(out_dir / "per_type.csv", _csv(per_type_rows(rows), PER_TYPE_FIELDS))
    lines = [f"# {title}", "", "Zero-shot cross-lingual transfer. Setups: madx = target language adapter + task "
             "adapter; source_la = source language adapter kept (no swap); task_only = task adapter without "
             "language adapters; full_ft = the base model fine-tuned. Best setup per row in bold.", ""]
    for task in sorted({r["task"] for r in rows}):
        task_rows = [r for r in rows if r["task"] == task]
        sources = sources_of(task_rows)
        if len(sources) > 1:  # the paper's Table 2 layout first, then the matrix, then each source's own table
            lines += _table(f"{task}: mean over source languages", mean_over_sources(task_rows), None,
                            over="source")
            lines += matrix(task, task_rows, [s for s in EVAL_SETUPS if any(r["setup"] == s for r in task_rows)][0])
        for source in sources:
            title = f"{task} from {source}" if len(sources) > 1 else task
            lines += _table(title, [r for r in task_rows if r["source"] == source], source)
        setups = [s for s in EVAL_SETUPS if any(r["setup"] == s for r in task_rows)]
        lines += per_type_section(task, task_rows, setups[0])
    lines += ["![results](results.png)", ""]
    coverage = coverage_rows(list(adapter_dirs))
    lines += coverage_section(coverage)
    write_text(out_dir / "coverage.csv", _csv([{"lang": lang, "unk_rate": stats["unk_rate"],
                                                "subwords_per_word": stats["subwords_per_word"]}
                                               for lang, stats in coverage], ("lang", "unk_rate", "subwords_per_word")))
    if notes:
        lines += [notes.rstrip(), ""]
    plot(rows, out_dir / "results.png")
    write_text(out_dir / "report.md", "\n".join(lines))
    log.info("report of %d results (%s) -> %s", len(rows), ", ".join(sorted({r["task"] for r in rows})),
             out_dir / "report.md")
    return out_dir
