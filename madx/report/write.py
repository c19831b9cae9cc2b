"""The report: report.md (the MAD-X paper's table layout), its tables as CSV files and its figures."""

from __future__ import annotations

import csv
import io
import logging
import statistics
from collections import defaultdict
from pathlib import Path

from ..core.errors import InputError
from ..core.files import write_text
from ..core.setups import FUSION_SETUPS, RELATED_SETUPS, SETUPS, TASK_ONLY, compared_with
from .budget import budget_section
from .plots import plot_loss_curves, plot_matrix, plot_transfer
from .scores import (BASELINES, AdapterRecord, CSV_FIELDS, PER_TYPE_FIELDS, adapter_records, baselines, collect,
                     confusion_sums, grid, main_setup, matrix_scores, mean_over_sources, mean_std, per_class_f1,
                     per_type_rows, sources_of, transfer_rows)

log = logging.getLogger(__name__)



def _cell(values: list[float]) -> str:
    """Mean ± std; a single value (one seed) has no spread, so no ± at all."""
    mean, std = mean_std(values)
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"


def _baseline_cells(found: dict | None) -> list[str]:
    return [f"{found[name]:.1f}" if found and found.get(name) is not None else "–" for name in BASELINES]


def _table(title: str, rows: list[dict], source_language: str | None, base: dict, over: str = "seed") -> list[str]:
    """Setups as columns, then the test set's baselines (`base`, from scores.baselines) of each row's target."""
    scores, setups, langs = grid(rows, source_language)
    metric = rows[0]["metric"]
    n = max(len(v) for v in scores.values())
    spread = f"mean ± std over {n} {over}s" if n > 1 else f"1 {over}: no spread"
    lines = [f"## {title} ({metric} x 100, {spread})", "",
             "| language | " + " | ".join((*setups, *BASELINES)) + " |", "|---|" + "---|" * (len(setups) + 2)]
    target_means = defaultdict(list)
    for lang in langs:
        means = {s: statistics.fmean(scores[(lang, s)]) for s in setups if scores.get((lang, s))}
        best = max(means, key=means.get) if means else None
        cells = []
        for s in setups:
            if s not in means:
                cells.append("–")
                continue
            cell = _cell(scores[(lang, s)])
            cells.append(f"**{cell}**" if s == best else cell)
            if lang != source_language:
                target_means[s].append(means[s])
        label = f"{lang} (source)" if lang == source_language else lang
        lines.append(f"| {label} | " + " | ".join(cells + _baseline_cells(base.get(lang))) + " |")
    if target_means:
        # a setup run on only some targets (the new-script ones) has no average comparable with the others'
        n_targets = max(len(v) for v in target_means.values())
        avg = {s: statistics.fmean(v) for s, v in target_means.items() if len(v) == n_targets}
        best = max(avg, key=avg.get)
        cells = [(f"**{avg[s]:.1f}**" if s == best else f"{avg[s]:.1f}") if s in avg else "–" for s in setups]
        targets = [lang for lang in langs if lang != source_language]
        # a baseline's average only where every target has it
        base_avg = {name: statistics.fmean(base[t][name] for t in targets)
                    for name in BASELINES if all(base.get(t, {}).get(name) is not None for t in targets)}
        lines.append("| avg (targets) | " + " | ".join(cells + _baseline_cells(base_avg)) + " |")
    return lines + [""]


def matrix(task: str, rows: list[dict], setup: str) -> list[str]:
    """The source x target matrix of one setup (the MAD-X paper's Figure 3), mean over seeds, and each target's
    baselines under it."""
    sources, targets, values = matrix_scores(rows, setup)
    base = baselines(rows)
    lines = [f"## {task}: {setup}, source x target ({rows[0]['metric']} x 100, mean over seeds)", "",
             "| source \\ target | " + " | ".join(targets) + " |", "|---|" + "---|" * len(targets)]
    for source in sources:
        cells = [f"{values[(source, t)]:.1f}" if (source, t) in values else "–" for t in targets]
        lines.append(f"| {source} | " + " | ".join(cells) + " |")
    for name in BASELINES:
        cells = [_baseline_cells(base.get(t))[BASELINES.index(name)] for t in targets]
        lines.append(f"| *{name}* | " + " | ".join(cells) + " |")
    return lines + [""]


def _over(rows: list[dict]) -> str:
    return "seeds and other sources" if len(sources_of(rows)) > 1 else "seeds"


def per_type_section(task: str, rows: list[dict], setup: str) -> list[str]:
    """F1 per entity type and target language for one setup, mean over seeds (and, with several sources, over
    the sources other than the target, as in the mean-over-sources table)."""
    f1 = defaultdict(list)
    for r in per_type_rows(transfer_rows([r for r in rows if r["setup"] == setup])):
        f1[(r["lang"], r["type"])].append(100 * r["f1"])
    if not f1:
        return []
    types = sorted({t for _, t in f1})
    langs = sorted({lang for lang, _ in f1})
    lines = [f"## {task}: {setup}, F1 per entity type (x 100, mean over {_over(rows)})", "",
             "| language | " + " | ".join(types) + " |", "|---|" + "---|" * len(types)]
    for lang in langs:
        lines.append(f"| {lang} | " + " | ".join(f"{statistics.fmean(f1[(lang, t)]):.1f}" if f1.get((lang, t))
                                                  else "–" for t in types) + " |")
    return lines + [""]


def per_class_section(task: str, rows: list[dict], setup: str) -> list[str]:
    """Classification and multiple choice: F1 per class and target, then each target's confusion matrix; a model
    that answers one class everywhere shows as one full column and F1 0 elsewhere."""
    labels, langs, f1 = per_class_f1(rows, setup)
    confusion = confusion_sums(rows, setup)
    lines = []
    if labels:
        lines += [f"## {task}: {setup}, F1 per class (x 100, mean over {_over(rows)})", "",
                  "| language | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
        lines += [f"| {lang} | " + " | ".join(f"{f1[(lang, c)]:.1f}" if (lang, c) in f1 else "–" for c in labels)
                  + " |" for lang in langs] + [""]
    for lang, (names, counts) in confusion.items():
        lines += [f"### {task}: {setup}, confusion matrix on {lang} (rows gold, columns predicted; counts summed "
                  f"over {_over(rows)})", "",
                  "| gold \\ predicted | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        lines += [f"| {gold} | " + " | ".join(str(counts.get((gold, p), 0)) for p in names) + " |" for gold in names]
        lines.append("")
    return lines


def fusion_section(task: str, rows: list[dict], base: dict) -> list[str]:
    """What a fusion gives: per target, madx and each fusion setup (mean over seeds and sources) and the
    difference, with the target's baselines beside them."""
    means = defaultdict(list)
    for r in transfer_rows(rows):
        means[(r["lang"], r["setup"])].append(100 * r["score"])
    lines = []
    for fusion in (s for s in FUSION_SETUPS if any(r["setup"] == s for r in rows)):
        other = compared_with(fusion)
        langs = sorted({lang for lang, setup in means if setup == fusion})
        lines += [f"## {task}: what {fusion} gives over {other} ({rows[0]['metric']} x 100, mean over {_over(rows)})",
                  "", f"| language | {other} | {fusion} | gain | " + " | ".join(BASELINES) + " |",
                  "|---|" + "---|" * (3 + len(BASELINES))]
        for lang in langs:
            # the gain of the cells as shown (each rounded to one decimal), so that the row adds up
            fused, plain = round(statistics.fmean(means[(lang, fusion)]), 1), means.get((lang, other))
            plain = round(statistics.fmean(plain), 1) if plain else None
            gain, plain_cell = (f"{fused - plain:+.1f}", f"{plain:.1f}") if plain is not None else ("–", "–")
            lines.append(f"| {lang} | {plain_cell} | {fused:.1f} | {gain} | "
                         + " | ".join(_baseline_cells(base.get(lang))) + " |")
        lines.append("")
    return lines


PLAIN = TASK_ONLY.name  # what the related languages' adapters are measured against: no language adapter at all


def related_section(task: str, rows: list[dict], base: dict) -> list[str]:
    """Targets evaluated on related languages' adapters (madx_nearest, madx_avg, madx_emea): per target, the adapters
    they stacked (with their URIEL distance where it chose them), each setup's score beside task_only's (no language
    adapter) with the gain of the best, the baselines, and the weights EMEA learned (mean over test batches, layer
    positions and seeds)."""
    related = [s for s in RELATED_SETUPS if any(r["setup"] == s for r in rows)]
    if not related:
        return []
    means, weights, stacked, distances = defaultdict(list), defaultdict(lambda: defaultdict(list)), {}, {}
    for r in transfer_rows(rows):
        found = r["artifacts"].get("lang_adapters") or [r["artifacts"].get("lang_adapter")]
        for directory, entry in zip(found, r.get("related") or ()):  # both nearest first
            if directory and entry["uriel_distance"] is not None:
                distances[r["lang"], directory] = entry["uriel_distance"]
        means[(r["lang"], r["setup"])].append(100 * r["score"])
        if r["setup"] in related and len(found) > len(stacked.get(r["lang"], ())):
            stacked[r["lang"]] = found  # madx_avg's (all it averages) over madx_nearest's (the first)
        for name, weight in ((r.get("emea") or {}).get("weights") or {}).items():
            weights[r["lang"]][name].append(weight)
    cell = lambda key: f"{statistics.fmean(means[key]):.1f}" if means.get(key) else "–"  # noqa: E731
    lines = [f"## {task}: targets on related languages' adapters ({rows[0]['metric']} x 100, mean over {_over(rows)})",
             "", f"| language | adapters | {PLAIN} | " + " | ".join(related) + f" | best gain over {PLAIN} | "
             + " | ".join(BASELINES) + " |", "|---|---|---|" + "---|" * (len(related) + 1 + len(BASELINES))]
    for lang in sorted(stacked):
        best = max((statistics.fmean(means[(lang, s)]) for s in related if means.get((lang, s))), default=None)
        plain = means.get((lang, PLAIN))
        gain = f"{best - statistics.fmean(plain):+.1f}" if best is not None and plain else "–"
        names = ", ".join(Path(d).name + (f" ({distances[lang, d]:.3f})" if (lang, d) in distances else "")
                          for d in stacked[lang] if d)
        lines.append(f"| {lang} | {names} | {cell((lang, PLAIN))} | "
                     + " | ".join(cell((lang, s)) for s in related) + f" | {gain} | "
                     + " | ".join(_baseline_cells(base.get(lang))) + " |")
    lines.append("")
    for lang, by_name in sorted(weights.items()):
        learned = ", ".join(f"{name} {statistics.fmean(w):.2f}" for name, w in by_name.items())
        lines += [f"madx_emea's learned weights on {lang}: {learned}.", ""]
    return lines


def warnings_section(rows: list[dict]) -> list[str]:
    """Every run's own warnings (e.g. all predictions one class), first in the report: they undo its numbers."""
    lines = [f"- {r['task']}, {r['source']} → {r['lang']}, {r['setup']}, seed {r['seed']}: {warning}"
             for r in rows for warning in r["warnings"]]
    return ["## Warnings", "", *lines, ""] if lines else []


def intro(rows: list[dict]) -> list[str]:
    """What the tables show: the setups that ran (in the paper's order), the baselines, the cells."""
    ran = [s for name, s in SETUPS.items() if any(r["setup"] == name for r in rows)]
    setups = "; ".join(f"{s.name} = {s.description}" for s in ran)
    return [f"Zero-shot cross-lingual transfer. Setups: {setups}. Beside them, each target's test-set baselines: "
            "majority = always answering its most frequent label, chance = answering at random (– where the "
            "evaluation recorded none). Best setup per row in bold; a cell without ± is a single run.", ""]


def _csv(rows: list[dict], fields) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def coverage_section(rows: list[tuple[str, dict, list]]) -> list[str]:
    """Tokenizer coverage per language (coverage_rows), and where a new-script setup (madx_translit, madx_emb) is
    recommended: unknown tokens or sub-words per word far above the source's, or a script the base model was
    not trained on."""
    from ..data.coverage import NEW_SCRIPT_HINT, UNK_WARNING

    if not rows:
        return []
    lines = ["## Tokenizer coverage", "",
             f"Share of unknown tokens and sub-words per word (per character in scripts written without spaces: "
             f"Chinese, Japanese, Thai, Khmer, Burmese, ...) under the base tokenizer (a sample of each corpus), and "
             f"the corpus's script. Above {100 * UNK_WARNING:.0f}% unknown, or, in a comparable unit, twice the "
             f"source's sub-words (per character: compared only within one script), or more than 1.5 sub-words per "
             f"character, or a script the base model was not trained on: adapters on the frozen base cannot read "
             f"the language; the table recommends {NEW_SCRIPT_HINT}.", "",
             "| language | script | unknown tokens | sub-words per word (or character) | recommendation |",
             "|---|---|---|---|---|"]
    for lang, stats, reasons in rows:
        advice = f"**madx_translit / madx_emb**: {'; '.join(reasons)}" if reasons else ""
        lines.append(f"| {lang} | {(stats.get('script') or '?').lower()} | {100 * stats['unk_rate']:.1f}% | "
                     f"{stats['subwords_per_word']:.2f}{' per character' if stats.get('unit') == 'character' else ''} | "
                     f"{advice} |")
    return lines + [""]


def coverage_rows(rows: list[AdapterRecord], source_language: str | None) -> list[tuple[str, dict, list]]:
    """(language, coverage stats, reasons to recommend a new-script setup) per language adapter. A romanized or
    new-embeddings adapter is its language's remedy already: no recommendation for it."""
    from ..data.coverage import new_script_reasons

    source = next((row.stats for row in rows if row.label == source_language), None)
    out = []
    for row in rows:
        reasons = [] if row.new_script or row.label == source_language else new_script_reasons(
            row.stats, source, row.stats.get("base_scripts"))
        out.append((row.label, row.stats, reasons))
    return out


def heldout_section(rows: list[AdapterRecord]) -> list[str]:
    """Each language adapter's MLM perplexity on held-out text of its language, next to the base model's."""
    if not rows:
        return []
    lines = ["## Language adapters: held-out MLM perplexity", "",
             "Masked language modelling perplexity on 1% of each corpus kept out of training (the same masked "
             "tokens for both): the base model alone, and with the language adapter. An adapter that does not "
             "lower it learned little.", "",
             "| language | base model | with its adapter | held-out blocks |", "|---|---|---|---|"]
    for lang, stats in ((row.label, row.stats) for row in rows):
        base = "– (trained embeddings)" if stats["base_perplexity"] is None else f"{stats['base_perplexity']:.2f}"
        lines.append(f"| {lang} | {base} | {stats['perplexity']:.2f} | {stats['blocks']} |")
    return lines + [""]


def write_report(eval_files: list[Path], out_dir: str | Path, *, source_language: str | None = None,
                 title: str = "madx results", notes: str = "", adapter_dirs: list[Path] = ()) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = collect(eval_files, source_language)
    if not rows:
        raise InputError("no evaluation results to report")
    write_text(out_dir / "results.csv", _csv(rows, CSV_FIELDS))
    write_text(out_dir / "per_type.csv", _csv(per_type_rows(rows), PER_TYPE_FIELDS))
    lines = [f"# {title}", "", *intro(rows), *warnings_section(rows)]
    for r in rows:
        for warning in r["warnings"]:
            log.warning("%s %s -> %s %s seed %s: %s", r["task"], r["source"], r["lang"], r["setup"], r["seed"], warning)
    for task in sorted({r["task"] for r in rows}):
        task_rows = [r for r in rows if r["task"] == task]
        sources, base = sources_of(task_rows), baselines(task_rows)
        if len(sources) > 1:  # the paper's Table 2 layout first, then the matrix, then each source's own table
            lines += _table(f"{task}: mean over source languages", mean_over_sources(task_rows), None, base,
                            over="source")
            lines += matrix(task, task_rows, main_setup(task_rows))
        for source in sources:
            heading = f"{task} from {source}" if len(sources) > 1 else task
            lines += _table(heading, [r for r in task_rows if r["source"] == source], source, base)
        lines += per_type_section(task, task_rows, main_setup(task_rows))
        lines += per_class_section(task, task_rows, main_setup(task_rows))
        lines += fusion_section(task, task_rows, base)
        lines += related_section(task, task_rows, base)
    lines += budget_section(rows)
    lines += ["![results](results.png)", "", "![source x target](matrix.png)", ""]
    if adapter_dirs:
        lines += ["![language adapters: MLM loss](lang_adapters.png)", ""]
    coverage = coverage_rows(adapter_records(list(adapter_dirs), "coverage"), source_language or sources_of(rows)[0])
    lines += coverage_section(coverage)
    for lang, _, reasons in coverage:
        if reasons:
            log.warning("%s: %s: a new-script setup is recommended (madx_translit, madx_emb)", lang, "; ".join(reasons))
    lines += heldout_section(adapter_records(list(adapter_dirs), "heldout"))
    write_text(out_dir / "coverage.csv", _csv(
        [{"lang": lang, "script": stats.get("script"), "unk_rate": stats["unk_rate"],
          "subwords_per_word": stats["subwords_per_word"], "unit": stats.get("unit", "word"),
          "recommend": "; ".join(reasons)}
         for lang, stats, reasons in coverage],
        ("lang", "script", "unk_rate", "subwords_per_word", "unit", "recommend")))
    if notes:
        lines += [notes.rstrip(), ""]
    plot_transfer(rows, out_dir / "results.png")
    plot_matrix(rows, out_dir / "matrix.png")
    plot_loss_curves(list(adapter_dirs), out_dir / "lang_adapters.png")
    write_text(out_dir / "report.md", "\n".join(lines))
    log.info("report of %d results (%s) -> %s", len(rows), ", ".join(sorted({r["task"] for r in rows})),
             out_dir / "report.md")
    return out_dir
