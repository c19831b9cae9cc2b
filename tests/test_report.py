"""The report with several source languages, on scores whose tables are computed by hand."""

import csv
import json

from madx.cli import main as cli

MADX = {("en", "en"): 0.90, ("en", "de"): 0.60, ("en", "xx"): 0.50,
        ("de", "en"): 0.70, ("de", "de"): 0.80, ("de", "xx"): 0.30}
TASK_ONLY = {("en", "en"): 0.91, ("en", "de"): 0.40, ("en", "xx"): 0.20,
             ("de", "en"): 0.50, ("de", "de"): 0.81, ("de", "xx"): 0.10}


def test_several_sources_mean_matrix_and_per_source_tables(tmp_path):
    evals = tmp_path / "eval"
    for setup, scores in (("madx", MADX), ("task_only", TASK_ONLY)):
        for (source, target), f1 in scores.items():
            path = evals / source / target / f"{setup}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            per_type = {"PER": {"f1": f1, "support": 3}, "LOC": {"f1": f1 / 2, "support": 1}}
            path.write_text(json.dumps({"task": "ner", "source": source, "lang": target, "setup": setup, "seed": 1,
                                        "task_type": "ner", "f1": f1, "per_type": per_type, "n_sentences": 10,
                                        "n_tokens": 50}))
    assert cli(["report", "--eval", str(evals), "--output", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    # a target's score is its mean over the *other* sources: en from de alone, xx from en and de
    assert "## ner: mean over source languages (f1 x 100, mean ± std over 2 sources)" in report
    assert "| de | **60.0** | 40.0 |" in report  # one other source: a single value, no spread
    assert "| en | **70.0** | 50.0 |" in report
    assert "| xx | **40.0 ± 14.1** | 15.0 ± 7.1 |" in report
    assert "| avg (targets) | **56.7** | 35.0 |" in report
    # the madx matrix: sources as rows, targets as columns (the sources first, in order)
    assert "| source \\ target | de | en | xx |" in report
    assert "| de | 80.0 | 70.0 | 30.0 |" in report and "| en | 60.0 | 90.0 | 50.0 |" in report
    # and each source's own table, the source's row first
    en_table = report.split("## ner from en")[1].split("##")[0]
    assert en_table.index("| en (source) |") < en_table.index("| de |")
    assert "| en (source) | 90.0 | **91.0** | – | – |" in en_table  # one seed; no baselines recorded
    assert "## ner from de" in report
    rows = list(csv.DictReader(open(tmp_path / "report" / "results.csv")))
    assert len(rows) == 12 and {r["source"] for r in rows} == {"en", "de"}
    for figure in ("results.png", "matrix.png", "lang_adapters.png"):
        assert (tmp_path / "report" / figure).stat().st_size > 1000, figure
    # F1 per entity type: per_type.csv, and madx's mean over sources and seeds per target in the report
    per_type = list(csv.DictReader(open(tmp_path / "report" / "per_type.csv")))
    assert len(per_type) == 12 * 2 and {r["type"] for r in per_type} == {"PER", "LOC"}
    assert "## ner: madx, F1 per entity type (x 100, mean over seeds and other sources)" in report
    assert "| xx | 20.0 | 40.0 |" in report  # LOC = mean(50, 30) / 2, PER = mean(50, 30)
    assert "| en | 35.0 | 70.0 |" in report  # from de alone: en's in-language score is not a transfer


def test_a_setup_run_on_some_targets_only_gets_no_average(tmp_path):
    """madx_translit on one target: its cell in that target's row, '–' elsewhere, and no average beside the
    averages of setups run on every target (one target's score is no mean over targets)."""
    evals = tmp_path / "eval"
    scores = {("madx", "de"): 0.6, ("madx", "xx"): 0.1, ("madx_translit", "xx"): 0.5}
    for (setup, target), f1 in scores.items():
        path = evals / target / f"{setup}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"task": "ner", "source": "en", "lang": target, "setup": setup, "seed": 1,
                                    "task_type": "ner", "f1": f1, "per_type": {}, "n_sentences": 10, "n_tokens": 50}))
    assert cli(["report", "--eval", str(evals), "--output", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| language | madx | madx_translit |" in report
    assert "| de | **60.0** | – |" in report and "| xx | 10.0 | **50.0** |" in report
    assert "| avg (targets) | **35.0** | – |" in report
