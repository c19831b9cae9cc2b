"""The demo's other task families and qad's new-script setups through the workflow, end to end from the root of a
clone (its own file, so the suite's workers run it beside test_workflow.py's reduced demo)."""

import csv
import json

import pytest

from test_workflow import clone, demo_config, run, write_config


@pytest.mark.slow
def test_every_task_family_and_new_script_setup_through_the_workflow(tmp_path):
    """The demo's classification, multiple-choice and QA tasks, reduced, end to end through Snakemake from the
    root of a clone, with qad (Cyrillic, unseen) as the target: each family's task adapter on a language adapter
    (madx, source_la) and its fully fine-tuned model trained and evaluated, qad's new-script setups (madx_translit,
    madx_emb) too, each family's metric in the report and results.csv. (task_only: each family trains and
    evaluates it through the same commands in test_families.py.)"""
    repo = clone(tmp_path / "clone")
    config = demo_config(("en", "qad"), tasks=("name_kind", "fill_gap", "who_where"))
    assert config["languages"]["qad"]["setups"] == ["madx_translit", "madx_emb"]  # as test_workflow.demo_config asks
    config["setups"] = ["madx", "source_la", "full_ft"]
    for spec in config["tasks"].values():  # the shipped config's per-task setups give way to the ones above
        spec.pop("setups", None)
    config["tasks"]["name_kind"]["fuse"] = ["fill_gap"]  # AdapterFusion across families: multiple choice's adapter
    # qae: test data and no corpus, evaluated on its related languages' adapters (madx_nearest, madx_avg, madx_emea)
    config["demo"]["languages"]["qae"] = {"word_order": "SOV", "script": "latin"}
    config["languages"]["qae"] = {"related": ["en", "qad"]}
    config["tasks"]["name_kind"]["languages"] = ["en", "qad", "qae"]
    write_config(repo, config, "families.yaml")
    run(["--cores", "2", "--configfile", "families.yaml"], cwd=repo, timeout=900)
    rows = list(csv.DictReader(open(repo / "results/report/results.csv")))
    found = {(r["task"], r["lang"], r["setup"]) for r in rows}
    new_script = {(t, "qad", setup) for t in config["tasks"] for setup in ("madx_translit", "madx_emb")}
    fusion = {("name_kind", lang, "madx_fusion") for lang in ("en", "qad")}
    related = {("name_kind", "qae", setup) for setup in ("source_la", "full_ft", "madx_nearest", "madx_avg", "madx_emea")}
    assert found == {(t, lang, setup) for t in config["tasks"] for lang in ("en", "qad")
                     for setup in config["setups"]} | new_script | fusion | related
    assert not (repo / "results/adapters/lang/qae").exists()  # no corpus: no adapter of its own
    avg = json.loads((repo / "results/eval/name_kind/en/qae/seed1/madx_avg.json").read_text())
    assert avg["lang_adapters"] == ["results/adapters/lang/en", "results/adapters/lang/qad"]
    assert avg["related"] == [{"lang": "en", "uriel_distance": None}, {"lang": "qad", "uriel_distance": None}]
    nearest = json.loads((repo / "results/eval/name_kind/en/qae/seed1/madx_nearest.json").read_text())
    assert nearest["related"] == [{"lang": "en", "uriel_distance": None}]  # the one it stacks
    log = (repo / "logs/evaluate/name_kind/en/qae.log").read_text()
    assert "qae: related languages en (named in the config), qad (named in the config)" in log
    emea = json.loads((repo / "results/eval/name_kind/en/qae/seed1/madx_emea.json").read_text())
    assert set(emea["emea"]["weights"]) == {"en", "qad"} and emea["baselines"] == avg["baselines"]
    metric = {r["task"]: r["metric"] for r in rows}
    assert metric == {"name_kind": "accuracy", "fill_gap": "accuracy", "who_where": "f1"}
    qa = json.loads((repo / "results/eval/who_where/en/qad/seed1/madx.json").read_text())
    assert {"exact_match", "f1", "windows", "misaligned_answers"} <= set(qa) and qa["stack"] == ["qad", "who_where"]
    translit = json.loads((repo / "results/eval/who_where/en/qad/seed1/madx_translit.json").read_text())
    assert translit["lang_adapter"] == "results/adapters/lang_translit/qad" and translit["romanized"].startswith("demo:")
    assert translit["misaligned_answers"] == qa["misaligned_answers"]  # answers moved with the romanized context
    emb = json.loads((repo / "results/eval/name_kind/en/qad/seed1/madx_emb.json").read_text())
    assert emb["embeddings"] == "results/adapters/lang_emb/qad/embeddings"
    report = (repo / "results/report/report.md").read_text()
    for task in config["tasks"]:
        assert f"## {task}" in report
    assert "## name_kind (accuracy x 100" in report and "## who_where (f1 x 100" in report
    assert "| language | madx | source_la | full_ft | madx_translit | madx_emb |" in report
    # coverage: qad's script is one the base model never trained on; its romanized adapter reads Latin
    assert "| qad | cyrillic | 0.0% |" in report and "**madx_translit / madx_emb**: cyrillic script" in report
    assert "| qad (romanized) | latin |" in report and "| qad (new embeddings) |" in report
    for log in ("train_lang_translit/qad.log", "train_lang_emb/qad.log"):
        assert "step " in (repo / "logs" / log).read_text()
    assert "a new-script setup is recommended" in (repo / "logs/train_lang/qad.log").read_text()
