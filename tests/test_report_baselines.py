"""The report's trust items: each target's baselines beside its scores, per-class scores and confusion matrices,
no spread from one seed, plots labelled by each task's metric, an intro of the setups that ran, and captions that
fit the run's task types. Inputs are evaluation JSONs written by hand, with numbers worked out here."""

import csv
import json
import types
from pathlib import Path

import jinja2
import pandas as pd
from docutils.core import publish_parts

from madx.cli import main as cli
from madx.report.plots import matrix_figure, transfer_figure
from madx.report.scores import collect

CAPTIONS = Path(__file__).parent.parent / "workflows" / "report"
BASELINES = {"en": {"majority": 0.5, "chance": 0.25}, "de": {"majority": 0.4, "chance": 0.25}}
LABELS = ["person", "place"]


def write_run(evals: Path, task="kind", lang="de", setup="madx", seed=1, score=0.6, task_type="classification",
              **extra) -> None:
    metric = "f1" if task_type in ("ner", "qa") else "accuracy"
    path = evals / task / lang / f"seed{seed}" / f"{setup}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"task": task, "source": "en", "lang": lang, "setup": setup, "seed": seed,
                                "task_type": task_type, metric: score, "n_examples": 10, **extra}))


def report(tmp_path, evals) -> str:
    assert cli(["report", "--eval", str(evals), "--output", str(tmp_path / "report")]) == 0
    return (tmp_path / "report" / "report.md").read_text()


def test_every_table_and_results_csv_show_each_targets_baselines(tmp_path):
    evals = tmp_path / "eval"
    for lang in ("en", "de"):
        for setup, score in (("madx", 0.8), ("task_only", 0.7)):
            for seed, shift in ((1, -0.05), (2, 0.05)):
                write_run(evals, lang=lang, setup=setup, seed=seed, score=score + shift, baselines=BASELINES[lang])
    write_run(evals, lang="xx", setup="madx", score=0.3)  # written before evaluations recorded baselines
    text = report(tmp_path, evals)
    assert "| language | madx | task_only | majority | chance |" in text
    assert "| en (source) | **80.0 ± 7.1** | 70.0 ± 7.1 | 50.0 | 25.0 |" in text
    assert "| de | **80.0 ± 7.1** | 70.0 ± 7.1 | 40.0 | 25.0 |" in text
    assert "| xx | **30.0** | – | – | – |" in text  # no baselines recorded: a dash, never a crash
    assert "| avg (targets) | **55.0** | – | – | – |" in text  # xx has none, so no baseline average
    rows = list(csv.DictReader(open(tmp_path / "report" / "results.csv")))
    assert len(rows) == 9 and {r["setup"] for r in rows} == {"madx", "task_only"}  # baselines are columns
    frame = pd.read_csv(tmp_path / "report" / "results.csv")
    # a pandas user's table: mean score per target and setup, and the target's baselines beside it
    table = frame.groupby(["lang", "setup"])[["score", "majority_baseline", "chance_baseline"]].mean()
    assert table.loc[("de", "madx")].round(6).tolist() == [0.8, 0.4, 0.25]
    assert frame[frame["lang"] == "xx"]["majority_baseline"].isna().all()


def test_the_matrix_has_each_targets_baselines_under_it(tmp_path):
    evals = tmp_path / "eval"
    for source in ("en", "de"):
        for target in ("en", "de"):
            path = evals / source / target / "madx.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"task": "kind", "source": source, "lang": target, "setup": "madx", "seed": 1,
                                        "task_type": "classification", "accuracy": 0.9 if source == target else 0.6,
                                        "baselines": BASELINES[target]}))
    text = report(tmp_path, evals)
    assert "| source \\ target | en | de |" in text or "| source \\ target | de | en |" in text
    matrix = text.split("source x target (accuracy")[1].split("##")[0]
    assert "| *majority* | 40.0 | 50.0 |" in matrix and "| *chance* | 25.0 | 25.0 |" in matrix  # targets de, en
    # the mean over the other sources: one each, a single value, its baselines beside it
    assert "## kind: mean over source languages (accuracy x 100, 1 source: no spread)" in text
    assert "| de | **60.0** | 40.0 | 25.0 |" in text


def test_a_collapsed_model_shows_in_per_class_scores_confusion_and_warnings(tmp_path):
    """de's madx answers "person" everywhere: F1 0 for "place", one full column, and the evaluation's warning on
    top; the counts are summed over the two seeds."""
    evals = tmp_path / "eval"
    collapsed = {"per_class": {"person": {"precision": 0.8, "recall": 1.0, "f1": 0.889, "support": 8},
                               "place": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}},
                 "confusion": {"labels": LABELS, "matrix": [[8, 0], [2, 0]]},
                 "warnings": ["all predictions are one class (person)"]}
    for seed in (1, 2):
        write_run(evals, lang="de", seed=seed, score=0.8, baselines=BASELINES["de"], **collapsed)
        write_run(evals, lang="en", seed=seed, score=0.9, baselines=BASELINES["en"],
                  per_class={"person": {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 5},
                             "place": {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 5}},
                  confusion={"labels": LABELS, "matrix": [[4, 1], [0, 5]]})
    text = report(tmp_path, evals)
    warnings = text.split("## Warnings")[1].split("##")[0]
    assert warnings.count("all predictions are one class (person)") == 2
    assert "- kind, en → de, madx, seed 1: all predictions are one class (person)" in warnings
    assert text.index("## Warnings") < text.index("## kind (")  # before any table
    assert "## kind: madx, F1 per class (x 100, mean over seeds)" in text
    assert "| language | person | place |" in text and "| de | 88.9 | 0.0 |" in text and "| en | 90.0 | 90.0 |" in text
    de = text.split("confusion matrix on de (rows gold, columns predicted; counts summed over seeds)")[1]
    assert "| gold \\ predicted | person | place |" in de
    assert "| person | 16 | 0 |" in de and "| place | 4 | 0 |" in de
    assert "| person | 8 | 2 |" in text.split("confusion matrix on en")[1]
    # no NER task: per_type.csv (a declared output) is its header only, and the report has no entity-type section
    assert (tmp_path / "report" / "per_type.csv").read_text() == "task,source,lang,setup,seed,type,f1,support\n"
    assert "entity type" not in text


def test_one_seed_has_no_spread_in_tables_or_plots(tmp_path):
    evals = tmp_path / "eval"
    for lang in ("en", "de"):
        write_run(evals, lang=lang, setup="madx", score=0.8, baselines=BASELINES[lang])
        write_run(evals, lang=lang, setup="task_only", score=0.7, baselines=BASELINES[lang])
    text = report(tmp_path, evals)
    assert "## kind (accuracy x 100, 1 seed: no spread)" in text and text.count("no spread") == 1
    assert "±" not in text.split("## kind")[1]
    assert "| de | **80.0** | 70.0 | 40.0 | 25.0 |" in text
    [ax] = transfer_figure(collect(sorted(evals.rglob("*.json")))).axes
    assert not [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]  # no zero-height bars
    assert "1 seed: no spread" in ax.get_title()
    write_run(evals, lang="de", setup="madx", seed=2, score=0.9, baselines=BASELINES["de"])
    [ax] = transfer_figure(collect(sorted(evals.rglob("*.json")))).axes
    [errors] = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(errors.lines[2][0].get_segments()) == 1  # de's madx alone has two seeds: one error bar


def test_plots_label_each_tasks_metric_and_the_legend_covers_no_bar(tmp_path):
    evals = tmp_path / "eval"
    setups = ("madx", "source_la", "task_only", "full_ft")
    for lang in ("en", "de", "xx"):
        for i, setup in enumerate(setups):  # tall bars: a legend inside the axes would cover some
            write_run(evals, task="kind", lang=lang, setup=setup, score=0.95 - 0.01 * i,
                      baselines=BASELINES.get(lang, BASELINES["de"]))
            write_run(evals, task="ner", lang=lang, setup=setup, score=0.5, task_type="ner", per_type={})
    fig = transfer_figure(collect(sorted(evals.rglob("*.json"))))
    kind, ner = fig.axes
    assert kind.get_ylabel() == "accuracy x 100" and ner.get_ylabel() == "f1 x 100"
    heat_maps = [ax for ax in matrix_figure(collect(sorted(evals.rglob("*.json")))).axes
                 if ax.get_label() != "<colorbar>"]
    titles = [ax.get_title() for ax in heat_maps]
    assert titles == ["kind: madx, accuracy x 100", "ner: madx, f1 x 100"]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in (kind, ner):
        legend = ax.get_legend().get_window_extent(renderer)
        bars = [patch.get_window_extent(renderer) for patch in ax.patches]
        assert len(bars) == 12 and not any(legend.overlaps(bar) for bar in bars)
        assert fig.bbox.contains(legend.x1 - 1, legend.y0 + 1)  # and it is inside the figure
    # kind's baselines: a dashed majority line across each target's bars, and chance; NER recorded none
    labels = [t.get_text() for t in kind.get_legend().get_texts()]
    assert labels == [*setups, "majority baseline", "chance baseline"]
    majority = kind.collections[[c.get_label() for c in kind.collections].index("majority baseline")]
    assert majority.get_linestyle() != [(0, None)]  # dashed, not solid
    # per target (en the source, then de, xx), across its group of bars at x = 0, 1, 2
    assert [(round(a[0]), a[1], b[1]) for a, b in majority.get_segments()] == [(0, 50.0, 50.0), (1, 40.0, 40.0),
                                                                               (2, 40.0, 40.0)]
    assert "majority baseline" not in [t.get_text() for t in ner.get_legend().get_texts()]


def test_the_intro_defines_only_the_setups_that_ran(tmp_path):
    evals = tmp_path / "eval"
    for setup in ("madx", "task_only"):
        write_run(evals, setup=setup)
    intro = report(tmp_path, evals).split("##")[0]
    assert "madx = target language adapter + task adapter" in intro and "task_only = " in intro
    for absent in ("source_la", "full_ft", "madx_translit", "madx_emb"):
        assert absent not in intro, absent


def render(caption: str, config: dict) -> str:
    """A caption as `snakemake --report` renders it: a Jinja template over the run's config, then RST."""
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    text = env.from_string((CAPTIONS / caption).read_text()).render(snakemake=types.SimpleNamespace(config=config))
    publish_parts(text, writer="html", settings_overrides={"halt_level": 2})  # valid RST, no warnings
    return text


def test_the_per_type_caption_speaks_of_ner_only_where_a_task_is_ner():
    ner = render("per_type.rst", {"tasks": {"ner": {"type": "ner"}, "kind": {"type": "classification"}}})
    assert "NER: F1 per entity type" in ner and "no NER task" not in ner
    for tasks in ({"kind": {"type": "classification"}, "pos": {"type": "pos"}}, None):
        other = render("per_type.rst", {"tasks": tasks} if tasks else {})
        assert "This run has no NER task" in other and "NER: F1" not in other
    for caption in ("results_table.rst", "results_plot.rst", "matrix.rst", "report_md.rst"):
        assert "chance" in render(caption, {}), caption


def test_targets_on_related_languages_adapters_get_their_own_table(tmp_path):
    """madx_nearest / madx_avg / madx_emea: per target the adapters they stacked, each score beside task_only's, the
    gain of the best, the baselines, and EMEA's learned weights (mean over seeds), with numbers worked out here."""
    evals = tmp_path / "eval"
    lang_dirs = ["results/adapters/lang/qac", "results/adapters/lang/qaa"]
    for seed, shift in ((1, -0.02), (2, 0.02)):
        write_run(evals, lang="qae", setup="task_only", seed=seed, score=0.40 + shift, baselines=BASELINES["de"])
        write_run(evals, lang="qae", setup="madx_nearest", seed=seed, score=0.50 + shift, baselines=BASELINES["de"],
                  lang_adapter=lang_dirs[0])
        write_run(evals, lang="qae", setup="madx_avg", seed=seed, score=0.45 + shift, baselines=BASELINES["de"],
                  lang_adapters=lang_dirs)
        write_run(evals, lang="qae", setup="madx_emea", seed=seed, score=0.55 + shift, baselines=BASELINES["de"],
                  lang_adapters=lang_dirs, emea={"weights": {"qac": 0.6 + shift, "qaa": 0.4 - shift}})
    text = report(tmp_path, evals)
    assert "## kind: targets on related languages' adapters (accuracy x 100, mean over seeds)" in text
    assert ("| language | adapters | task_only | madx_nearest | madx_avg | madx_emea | best gain over task_only | "
            "majority | chance |") in text
    assert "| qae | qac, qaa | 40.0 | 50.0 | 45.0 | 55.0 | +15.0 | 40.0 | 25.0 |" in text
    assert "madx_emea's learned weights on qae: qac 0.60, qaa 0.40." in text
    assert "madx_emea = madx_avg with the average's weights learned on each test batch" in text  # the intro


def test_related_languages_chosen_by_uriel_show_their_distances(tmp_path):
    evals = tmp_path / "eval"
    related = [{"lang": "hi", "uriel_distance": 0.1234}, {"lang": "bn", "uriel_distance": 0.25}]
    write_run(evals, lang="mr", setup="task_only", score=0.40, baselines=BASELINES["de"])
    write_run(evals, lang="mr", setup="madx_avg", score=0.45, baselines=BASELINES["de"], related=related,
              lang_adapters=["results/adapters/lang/hi", "results/adapters/lang/bn"])
    assert "| mr | hi (0.123), bn (0.250) | 40.0 | 45.0 | +5.0 | 40.0 | 25.0 |" in report(tmp_path, evals)
