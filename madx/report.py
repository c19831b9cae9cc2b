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

CSV_FIELDS = ("task", "lang", "setup", "seed", "metric", "score", "precision", "recall", "f1", "accuracy",
              "n_sentences", "n_tokens")

log = logging.getLogger(__name__)


def collect(eval_files: list[Path]) -> list[dict]:
    rows = []
    for path in sorted(eval_files):
        result = json.loads(Path(path).read_text())
        metric = "accuracy" if result.get("task_type") == "pos" else "f1"
        rows.append({**{k: result.get(k) for k in CSV_FIELDS}, "metric": metric, "score": result[metric]})
    return rows


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


def _table(task: str, rows: list[dict], source_language: str | None) -> list[str]:
    scores, setups, langs = _grid(rows, source_language)
    metric = rows[0]["metric"]
    n_seeds = max(len(v) for v in scores.values())
    lines = [f"## {task} ({metric} x 100, mean ± std over {n_seeds} seed{'s' if n_seeds > 1 else ''})", "",
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


def plot(rows: list[dict], path: Path, source_language: str | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({r["task"] for r in rows})
    fig, axes = plt.subplots(len(tasks), 1, figsize=(9, 3.6 * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks):
        scores, setups, langs = _grid([r for r in rows if r["task"] == task], source_language)
        width = 0.8 / max(len(setups), 1)
        for i, setup in enumerate(setups):
            xs = [j + (i - (len(setups) - 1) / 2) * width for j in range(len(langs))]
            stats = [_mean_std(scores[(lang, setup)]) if scores.get((lang, setup)) else (0.0, 0.0) for lang in langs]
            ax.bar(xs, [m for m, _ in stats], width, yerr=[s for _, s in stats], label=setup, capsize=2)
        ax.set_xticks(range(len(langs)), langs)
        ax.set_ylabel(rows[0]["metric"] + " x 100")
        ax.set_title(f"{task}: zero-shot transfer from {source_language or 'the source'}")
        ax.legend(ncols=len(setups), fontsize=8)
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def coverage_section(adapter_dirs: list[Path]) -> list[str]:
    """Tokenizer coverage per language, from each trained language adapter's training.json."""
    from .coverage import UNK_WARNING

    rows = []
    for directory in adapter_dirs:
        info_file = Path(directory) / "training.json"
        if info_file.is_file():
            info = json.loads(info_file.read_text())
            if "coverage" in info:
                rows.append((info["lang"], info["coverage"]))
    if not rows:
        return []
    lines = ["## Tokenizer coverage", "",
             f"Share of unknown tokens and sub-words per word under the base tokenizer (a sample of each corpus). "
             f"Above {100 * UNK_WARNING:.0f}% unknown, a language's script is badly covered: MAD-X cannot fix that.", "",
             "| language | unknown tokens | sub-words per word | |", "|---|---|---|---|"]
    for lang, stats in sorted(rows):
        flag = "**badly covered script**" if stats["unk_rate"] > UNK_WARNING else ""
        lines.append(f"| {lang} | {100 * stats['unk_rate']:.1f}% | {stats['subwords_per_word']:.2f} | {flag} |")
    return lines + [""]


def write_report(eval_files: list[Path], out_dir: str | Path, *, source_language: str | None = None,
                 title: str = "madx results", notes: str = "", adapter_dirs: list[Path] = ()) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = collect(eval_files)
    if not rows:
        raise ValueError("no evaluation results to report")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(out_dir / "results.csv", buffer.getvalue())
    lines = [f"# {title}", "", "Zero-shot cross-lingual transfer. Setups: madx = target language adapter + task "
             "adapter; source_la = source language adapter kept (no swap); task_only = task adapter without "
             "language adapters; full_ft = the base model fine-tuned. Best setup per row in bold.", ""]
    for task in sorted({r["task"] for r in rows}):
        lines += _table(task, [r for r in rows if r["task"] == task], source_language)
    lines += ["![results](results.png)", ""]
    lines += coverage_section(list(adapter_dirs))
    if notes:
        lines += [notes.rstrip(), ""]
    plot(rows, out_dir / "results.png", source_language)
    write_text(out_dir / "report.md", "\n".join(lines))
    log.info("report of %d results (%s) -> %s", len(rows), ", ".join(sorted({r["task"] for r in rows})),
             out_dir / "report.md")
    return out_dir
