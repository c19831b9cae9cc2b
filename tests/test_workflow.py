"""The Snakemake workflow: dry runs of every shipped config, lint, config errors, a reduced demo end to end,
and adding a language to a finished run."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]

# The default demo, shrunk to run in about a minute on 2 CPU cores.
REDUCED = {
    "demo": {"corpus_sentences": 600, "train_sentences": 200, "dev_sentences": 60, "test_sentences": 60,
             "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
             "max_seq_len": 32, "vocab_size": 600,
             "pretrain": {"max_steps": 40, "batch_size": 32, "lr": 0.002, "warmup_steps": 5, "log_every": 20}},
    "train_lang": {"max_steps": 20, "batch_size": 16, "lr": 0.001, "seq_len": 32, "save_every": 10, "log_every": 10},
    "train_task": {"max_steps": 20, "batch_size": 16, "lr": 0.001, "max_length": 32, "eval_every": 10,
                   "log_every": 10},
    "seeds": [1],
}


def run(args, cwd, check=True, **kwargs):
    proc = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, MADX_NO_PROGRESS="1"), **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def job_counts(output: str) -> dict:
    """The 'Job stats' table of a dry run: {rule: count}."""
    table = output.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


def write_config(directory: Path, config: dict) -> Path:
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def demo_config(languages=("en", "qac"), results="results") -> dict:
    config = yaml.safe_load((REPO / "configs" / "config.yaml").read_text())
    for key, value in REDUCED.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) and key in config else value
    config["languages"] = {lang: config["languages"][lang] for lang in languages}
    if results != "results":  # move every output path under another root
        text = yaml.safe_dump(config).replace("results/", "RESULTS_ROOT/")
        config = yaml.safe_load(text)
        config = json.loads(json.dumps(config).replace("RESULTS_ROOT", results))
        config["results"] = results
    return config


@pytest.mark.parametrize("name", ["config.yaml", "xlmr-wikiann.yaml"])
def test_dry_run_of_every_shipped_config(name, tmp_path):
    proc = run(["-n", "--configfile", str(REPO / "configs" / name), "--directory", str(tmp_path)], cwd=REPO)
    counts = job_counts(proc.stdout)
    config = yaml.safe_load((REPO / "configs" / name).read_text())
    n_lang = len(config["languages"])
    assert counts["evaluate"] == n_lang * len(config["seeds"]) * len(config["setups"])
    assert counts["train_lang_adapter"] == n_lang
    assert counts["train_task"] == 3 * len(config["seeds"])
    assert counts["report"] == 1


# Justified exclusion: madx rules run the `madx` CLI of the environment the project installs (pip, with
# torch first; README); a per-rule conda env or container would duplicate that install for every job.
ALLOWED_LINTS = ("Specify a conda environment or container for each rule.",)


def test_lint_is_clean():
    proc = run(["--lint", "--directory", str(REPO)], cwd=REPO, check=False)
    found = re.findall(r"^    \* (.+):$", proc.stdout + proc.stderr, re.M)
    assert [lint for lint in found if lint not in ALLOWED_LINTS] == [], proc.stdout + proc.stderr
    assert len(found) == 6  # the allowed one, once per rule


@pytest.mark.parametrize("edit,message", [
    (lambda c: c.update(bogus=1), "unknown key 'bogus'"),
    (lambda c: c["languages"]["qac"].update(corpuss="x.txt"), "languages.qac: unknown key 'corpuss'"),
    (lambda c: c["tasks"]["ner"].update(type="qa"), "tasks.ner.type: 'qa' is not one of"),
    (lambda c: c["languages"].update(zz={}), "languages.zz: needs a corpus"),
    (lambda c: c.update(seeds=[1, 1]), "seeds: \\[1, 1\\] has non-unique elements"),
    (lambda c: c.update(seeds="1"), "seeds: '1' is not of type 'array'"),
    (lambda c: c["languages"]["qac"].update(corpus="missing/corpus.txt"),
     "languages.qac.corpus: file 'missing/corpus.txt' not found"),
    (lambda c: c["tasks"]["ner"].update(languages=["en", "xx"]), "tasks.ner.languages: \\['xx'\\] not under languages"),
    (lambda c: c.update(source_language="de"), "source_language: 'de' is not among languages"),
    (lambda c: c["lang_adapter"].update(reduction_factor=0), "lang_adapter.reduction_factor: 0 is less than"),
    (lambda c: c["train_lang"].update(compile="fast"), "train_lang.compile: 'fast' is not valid"),
])
def test_invalid_config_fails_before_any_job(tmp_path, edit, message):
    config = demo_config()
    edit(config)
    proc = run(["-n", "--configfile", str(write_config(tmp_path, config)), "--directory", str(tmp_path)],
               cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert re.search(message, proc.stdout + proc.stderr), proc.stdout[-2000:] + proc.stderr[-2000:]
    assert not (tmp_path / "results").exists()


def mtimes(directory: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}


def test_reduced_demo_interrupted_resumed_then_add_a_language(tmp_path):
    # an output root with a space and shell metacharacters: every path must reach the commands quoted
    root = "res ults;$x"
    results = tmp_path / root
    config_file = write_config(tmp_path, demo_config(("en", "qac"), results=root))
    args = ["--cores", "2", "--configfile", str(config_file), "--directory", str(tmp_path)]

    # interrupt the whole run once the first language adapter's job is finished (its benchmark is written last)
    proc = subprocess.Popen([*SNAKEMAKE, *args], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, MADX_NO_PROGRESS="1"))
    finished = results / "benchmarks/train_lang/en.tsv"
    deadline = time.time() + 600
    while not finished.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    assert finished.exists() and not (results / "report").exists(), "the interrupt must land mid-run"
    kept = {**mtimes(results / "demo/base_model"), **mtimes(results / "adapters/lang/en")}

    # the same command again (with --rerun-incomplete: the interrupted jobs' outputs are redone, never trusted)
    run([*args, "--rerun-incomplete"], cwd=tmp_path, timeout=900)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # finished jobs were not redone
    report = (results / "report" / "report.md").read_text()
    for setup in ("madx", "source_la", "task_only", "full_ft"):
        assert setup in report
    assert "| en (source) |" in report and "| qac |" in report and "avg (targets)" in report
    assert "seen by the base model" in report  # the demo's language table is in the report
    assert "## Tokenizer coverage" in report and "| qac | 0.0% |" in report
    evaluation = json.loads((results / "eval/ner/qac/seed1/madx.json").read_text())
    assert evaluation["stack"] == ["qac", "ner"] and evaluation["n_sentences"] == 60
    assert (tmp_path / "logs/train_lang/qac.log").read_text().count("step ") >= 2
    for log in (tmp_path / "logs").rglob("*.log"):  # log lines, no progress bars (loading, saving, training)
        assert "it/s]" not in log.read_text() and "\r" not in log.read_text(), log
    assert (results / "report/results.png").stat().st_size > 1000
    assert not list(results.rglob("*.work"))  # no checkpoints left once outputs are in place

    # adding a language schedules only its language adapter, its evaluations and the report
    config_file = write_config(tmp_path, demo_config(("en", "qac", "qab"), results=root))
    proc = run(["-n", "--configfile", str(config_file), "--directory", str(tmp_path)], cwd=tmp_path)
    assert job_counts(proc.stdout) == {"train_lang_adapter": 1, "evaluate": 4, "report": 1, "all": 1}
    assert "wildcards: lang=qab" in proc.stdout
    # and a finished run has nothing to do
    config_file = write_config(tmp_path, demo_config(("en", "qac"), results=root))
    proc = run(["-n", "--configfile", str(config_file), "--directory", str(tmp_path)], cwd=tmp_path)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_ready_language_adapters_replace_training(tmp_path):
    """`languages.<lang>.adapter`: a ready (e.g. AdapterHub) language adapter is used as it is, for a target
    language and for the source language, and no language adapter is trained for either."""
    import madx
    from tiny import tiny_model

    ready = {}
    for lang in ("en", "qac"):
        ready[lang] = tmp_path / "hub adapters" / lang  # a space: the path must reach the commands quoted
        model = tiny_model()
        madx.add_adapter(model, lang, madx.LANGUAGE_ADAPTER)
        madx.save_adapter(model, lang, ready[lang])
    config = demo_config(("en", "qaa", "qac"))
    config["languages"]["en"] = {"adapter": str(ready["en"])}
    config["languages"]["qac"] = {"adapter": str(ready["qac"])}
    proc = run(["-n", "-p", "--configfile", str(write_config(tmp_path, config)), "--directory", str(tmp_path)],
               cwd=tmp_path)
    counts = job_counts(proc.stdout)
    assert counts["train_lang_adapter"] == 1 and "wildcards: lang=qaa" in proc.stdout  # only qaa is trained
    assert counts["evaluate"] == 3 * len(config["seeds"]) * len(config["setups"])
    quoted = {lang: f"--lang-adapter '{path}'" for lang, path in ready.items()}
    commands = [line for line in proc.stdout.splitlines() if line.startswith("Shell command: madx launch")]
    madx_task = [c for c in commands if " train-task " in c and "--setup madx" in c]
    assert madx_task and all(quoted["en"] in c for c in madx_task)  # the source LA under the task adapter
    qac_madx = [c for c in commands if " evaluate " in c and "--lang qac" in c and "--setup madx" in c]
    assert qac_madx and all(quoted["qac"] in c for c in qac_madx)  # swapped in for zero-shot transfer
    source_la = [c for c in commands if " evaluate " in c and "--lang qac" in c and "--setup source_la" in c]
    assert source_la and all(quoted["en"] in c for c in source_la)
