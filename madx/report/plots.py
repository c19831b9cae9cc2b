"""The report's figures: transfer per target and setup, the source x target heat map, and each language
adapter's MLM loss curve. Each is written whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.files import LANG_RECORD, write_with
from .scores import adapter_label, baselines, grid, main_setup, matrix_scores, mean_over_sources, mean_std, sources_of


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    _pyplot().close(fig)


# how each baseline is drawn over its target's bars
BASELINE_STYLE = {"majority": {"linestyle": "--", "color": "black"}, "chance": {"linestyle": ":", "color": "grey"}}


def transfer_figure(rows: list[dict]):
    """Bars per target language and setup, mean ± std over seeds (several sources: over the other sources); each
    target's baselines as lines across its bars; error bars only where there is a spread (two values or more)."""
    plt = _pyplot()
    tasks = sorted({r["task"] for r in rows})
    fig, axes = plt.subplots(len(tasks), 1, figsize=(10, 3.6 * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks):
        task_rows = [r for r in rows if r["task"] == task]
        several = len(sources_of(task_rows)) > 1
        # several sources: each target's mean over the other sources (± std over sources)
        if several:
            scores, setups, langs = grid(mean_over_sources(task_rows), None)
        else:
            scores, setups, langs = grid(task_rows, sources_of(task_rows)[0])
        width = 0.8 / max(len(setups), 1)
        for i, setup in enumerate(setups):
            # a setup a language does not run (the new-script ones run only where asked) has no bar, not a zero
            present = [j for j, lang in enumerate(langs) if scores.get((lang, setup))]
            xs = [j + (i - (len(setups) - 1) / 2) * width for j in present]
            stats = [mean_std(scores[(langs[j], setup)]) for j in present]
            ax.bar(xs, [m for m, _ in stats], width, label=setup)
            spread = [(x, m, s) for x, (m, s) in zip(xs, stats) if s is not None]
            if spread:
                ax.errorbar([x for x, _, _ in spread], [m for _, m, _ in spread], yerr=[s for *_, s in spread],
                            fmt="none", ecolor="black", capsize=2, linewidth=1)
        _plot_baselines(ax, langs, baselines(task_rows))
        ax.set_xticks(range(len(langs)), langs)
        ax.set_ylabel(task_rows[0]["metric"] + " x 100")
        source = "every other source (mean)" if several else (sources_of(task_rows)[0] or "the source")
        single = max(len(v) for v in scores.values()) == 1
        spread = f" (1 {'source' if several else 'seed'}: no spread)" if single else ""
        ax.set_title(f"{task}: zero-shot transfer from {source}{spread}")
        # outside the axes, so it can never cover a bar; the setups first, then the baselines
        handles, labels = ax.get_legend_handles_labels()
        order = sorted(range(len(labels)), key=lambda k: labels[k].endswith(" baseline"))
        ax.legend([handles[k] for k in order], [labels[k] for k in order], loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=8)
    fig.tight_layout()
    return fig


def _plot_baselines(ax, langs: list[str], base: dict) -> None:
    """Each baseline as a horizontal line across its target's group of bars (one legend entry per baseline)."""
    for name, style in BASELINE_STYLE.items():
        found = [(j, base[lang][name]) for j, lang in enumerate(langs) if base.get(lang, {}).get(name) is not None]
        if found:
            ax.hlines([value for _, value in found], [j - 0.45 for j, _ in found], [j + 0.45 for j, _ in found],
                      linewidth=1.2, label=f"{name} baseline", **style)


def plot_transfer(rows: list[dict], path: Path) -> None:
    _save(transfer_figure(rows), path)


def matrix_figure(rows: list[dict]):
    """Per task, the main setup's source x target scores as a heat map (the MAD-X paper's Figure 3)."""
    plt = _pyplot()
    tasks = sorted({r["task"] for r in rows})
    panels = []
    for task in tasks:
        task_rows = [r for r in rows if r["task"] == task]
        setup = main_setup(task_rows)
        panels.append((task, setup, task_rows[0]["metric"], *matrix_scores(task_rows, setup)))
    height = sum(0.5 * len(sources) + 1.5 for _, _, _, sources, _, _ in panels)
    fig, axes = plt.subplots(len(panels), 1, figsize=(1.2 + 0.7 * max(len(t) for *_, t, _ in panels), height),
                             squeeze=False)
    for ax, (task, setup, metric, sources, targets, values) in zip(axes[:, 0], panels):
        grid_values = [[values.get((s, t), float("nan")) for t in targets] for s in sources]
        image = ax.imshow(grid_values, cmap="viridis", aspect="auto")
        for i, row in enumerate(grid_values):
            for j, value in enumerate(row):
                if value == value:  # not NaN; dark text on the light end of the colour map
                    color = "black" if image.norm(value) > 0.6 else "white"
                    ax.text(j, i, f"{value:.0f}", ha="center", va="center", color=color, fontsize=8)
        ax.set_xticks(range(len(targets)), targets)
        ax.set_yticks(range(len(sources)), sources)
        ax.set_xlabel("target")
        ax.set_ylabel("source")
        ax.set_title(f"{task}: {setup}, {metric} x 100")
        fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return fig


def plot_matrix(rows: list[dict], path: Path) -> None:
    _save(matrix_figure(rows), path)


def plot_loss_curves(adapter_dirs: list[Path], path: Path) -> None:
    """Each trained language adapter's MLM loss over its training steps (from its train_log.jsonl)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for directory in sorted(map(Path, adapter_dirs)):
        log = directory / "train_log.jsonl"
        if log.is_file():
            records = [json.loads(line) for line in log.read_text().splitlines() if line]
            info = directory / LANG_RECORD
            label = adapter_label(json.loads(info.read_text())) if info.is_file() else directory.name
            ax.plot([r["step"] for r in records], [r["loss"] for r in records], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("MLM loss")
    ax.set_title("language adapters: masked language modelling loss")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, ncols=4)
    fig.tight_layout()
    _save(fig, path)
