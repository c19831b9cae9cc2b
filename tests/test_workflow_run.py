"""The reduced demo end to end, run the way the README runs it (`snakemake ...` from the root of a clone): interrupted
and resumed, its report, Snakemake's HTML report; then, as dry runs, a language added, a second source and a
language's own budget. Apart from
test_workflow.py's dry runs so the suite's two workers run them side by side."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from test_workflow import SNAKEMAKE, clone, demo_config, eval_runs, job_counts, madx_commands, option, run, values, \
    write_config


def interrupt(proc, timeout=120):
    """Ctrl-C, pressed again every 3 s until Snakemake stops."""
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            pass
    assert proc.poll() is not None, "snakemake did not stop on Ctrl-C"


def mtimes(directory: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_reduced_demo_interrupted_resumed_then_add_a_language(tmp_path):
    # an output root with a space and shell metacharacters: every path must reach the commands quoted
    root = "res ults;$x"
    repo = clone(tmp_path / "clone")
    results = repo / root
    write_config(repo, demo_config(("en", "qac"), results=root), "reduced.yaml")
    args = ["--cores", "2", "--configfile", "reduced.yaml"]

    # interrupt the whole run once the first language adapter's job is finished (its benchmark is written last)
    # Ctrl-C must reach Snakemake even when the tests run in the background, where a shell starts them with
    # SIGINT ignored (and a Python started so never installs its KeyboardInterrupt handler)
    proc = subprocess.Popen([*SNAKEMAKE, *args], cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, MADX_NO_PROGRESS="1"),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    finished = results / "benchmarks/train_lang/en.tsv"
    deadline = time.time() + 600
    while not finished.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    interrupt(proc)
    assert finished.exists() and not (results / "report").exists(), "the interrupt must land mid-run"
    kept = {**mtimes(results / "demo"), **mtimes(results / "adapters/lang/en")}

    # the same command again (with --rerun-incomplete: the interrupted jobs' outputs are redone, never trusted)
    run([*args, "--rerun-incomplete"], cwd=repo, timeout=900)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # finished jobs were not redone
    report = (results / "report" / "report.md").read_text()
    assert report.startswith("# madx results: reduced.yaml")
    for setup in ("madx", "source_la", "task_only", "full_ft"):
        assert setup in report
    assert "| en (source) |" in report and "| qac |" in report and "avg (targets)" in report
    assert "| qac | SVO | latin | **no** |" in report  # the demo's language table is in the report
    assert "## Tokenizer coverage" in report and "| qac | latin | 0.0% |" in report
    assert "## Language adapters: held-out MLM perplexity" in report
    evaluation = json.loads((results / "eval/ner/en/qac/seed1/madx.json").read_text())
    assert evaluation["stack"] == ["qac", "ner"] and evaluation["n_sentences"] == 60 and evaluation["source"] == "en"
    assert (repo / "logs" / root / "train_lang/qac.log").read_text().count("step ") >= 2  # the run's own logs
    for log in (repo / "logs").rglob("*.log"):  # log lines, no progress bars (loading, saving, training)
        assert "it/s]" not in log.read_text() and "\r" not in log.read_text(), log
    assert (results / "report/results.png").stat().st_size > 1000
    assert not list(results.rglob("*.work")) and not list(results.rglob(".*.staging"))  # nothing half-made left
    # Snakemake's own HTML report of the run: the tables, the plot and their captions
    run(["--report", "report.html", "--configfile", "reduced.yaml"], cwd=repo)
    html = (repo / "report.html").read_text()
    for name in ("results.csv", "per_type.csv", "coverage.csv", "results.png", "matrix.png", "lang_adapters.png",
                 "report.md"):
        assert name in html, name
    assert "Zero-shot transfer per target language and setup" in html  # a caption

    proc = run(["-n", *args], cwd=repo)  # a finished run has nothing to do
    assert "Nothing to be done" in proc.stdout + proc.stderr

    # the later scenarios are dry runs over the finished run: which jobs run, on which inputs, is the workflow's
    # part (what a job computes is checked above, and each job alone in test_training.py)
    # adding a demo language is one line: its data, its language adapter, its evaluations and the report; the
    # base model, the other languages' data and every finished result stay
    config = demo_config(("en", "qac"), results=root)
    added = json.loads(json.dumps(config))
    added["demo"]["languages"]["qae"] = {"word_order": "SOV", "script": "latin"}
    write_config(repo, added, "reduced.yaml")
    proc = run(["-n", "-p", *args], cwd=repo)
    assert job_counts(proc.stdout) == {"demo_language": 1, "demo_readme": 1, "train_lang_adapter": 1, "evaluate": 1,
                                       "report": 1, "all": 1}
    assert "wildcards: lang=qae" in proc.stdout
    [evaluation] = madx_commands(proc.stdout, "evaluate")  # qae's: every setup, on the finished task trainings
    assert option(evaluation, "--lang") == "qae" and len(eval_runs(evaluation)) == 4
    assert ("madx", "1", f"{root}/tasks/ner/en/madx/seed1", f"{root}/adapters/lang/qae") in eval_runs(evaluation)

    # a second source language: its task training (on its own language adapter) and its evaluations, nothing else
    # (the report's tables over several sources are checked on known scores in test_report.py)
    two_sources = {key: value for key, value in config.items() if key != "source_language"}
    two_sources["source_languages"] = ["en", "qac"]
    write_config(repo, two_sources, "reduced.yaml")
    proc = run(["-n", "-p", *args], cwd=repo)
    assert job_counts(proc.stdout) == {"train_task": 3, "evaluate": 2, "report": 1, "all": 1}
    trainings = {option(words, "--setup"): words for words in madx_commands(proc.stdout, "train-task")}
    assert set(trainings) == {"madx", "task_only", "full_ft"}
    for words in trainings.values():
        assert option(words, "--lang") == "qac" and option(words, "--train") == f"{root}/demo/data/ner/qac.train.conll"
    assert option(trainings["madx"], "--lang-adapter") == f"{root}/adapters/lang/qac"
    assert "--lang-adapter" not in trainings["task_only"] + trainings["full_ft"]
    evaluations = {option(words, "--lang"): words for words in madx_commands(proc.stdout, "evaluate")}
    assert set(evaluations) == {"en", "qac"}
    assert all(option(words, "--source") == "qac" for words in evaluations.values())
    # zero-shot from qac to en: qac's task adapter under en's language adapter (source_la: under qac's own)
    qac_madx = f"{root}/tasks/ner/qac/madx/seed1"
    assert {*eval_runs(evaluations["en"])} >= {("madx", "1", qac_madx, f"{root}/adapters/lang/en"),
                                                ("source_la", "1", qac_madx, f"{root}/adapters/lang/qac")}
    [report_command] = madx_commands(proc.stdout, "report")  # every evaluation of both sources
    assert set(values(report_command, "--eval")) == {f"{root}/eval/ner/{source}/{target}/results.json"
                                                     for source in ("en", "qac") for target in ("en", "qac")}

    # a language's own budget (languages.<lang>.train_lang) retrains that language's adapter alone, and the
    # evaluation job that stacks it (which recomputes only the runs that use it: test_training.py checks that)
    config["languages"] = {"qac": {"train_lang": {"max_steps": 7}}}
    write_config(repo, config, "reduced.yaml")
    proc = run(["-n", "-p", *args], cwd=repo)
    assert job_counts(proc.stdout) == {"train_lang_adapter": 1, "evaluate": 1, "report": 1, "all": 1}
    [command] = madx_commands(proc.stdout, "train-lang")
    assert option(command, "--lang") == "qac" and option(command, "--max-steps") == "7"
    assert option(command, "--seq-len") == "32"  # the global train_lang settings under the language's own
    [evaluation] = madx_commands(proc.stdout, "evaluate")
    assert option(evaluation, "--lang") == "qac"
    assert ("madx", "1", f"{root}/tasks/ner/en/madx/seed1", f"{root}/adapters/lang/qac") in eval_runs(evaluation)
