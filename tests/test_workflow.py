"""The Snakemake workflow, run the way the README runs it: `snakemake ...` from the root of a clone (a copy of
the repository's files, no --directory). Dry runs of every shipped config, lint, config errors, ready language
adapters (the reduced demo end to end is test_workflow_run.py's)."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from itertools import takewhile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [str(Path(sys.executable).with_name("snakemake"))]  # the command the README gives

# The default demo, shrunk to run in about a minute on 2 CPU cores.
REDUCED_KNOWLEDGE = {"max_steps": 20, "eval_every": 10, "log_every": 10, "max_length": 32}
REDUCED = {
    "demo": {"corpus_sentences": 600, "train_sentences": 200, "dev_sentences": 60, "test_sentences": 60,
             "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
             "max_seq_len": 32, "vocab_size": 600,
             "pretrain": {"max_steps": 40, "batch_size": 32, "lr": 0.002, "warmup_steps": 5, "log_every": 20}},
    "train_lang": {"max_steps": 20, "batch_size": 16, "lr": 0.001, "seq_len": 32, "save_every": 10, "log_every": 10},
    "train_task": {"max_steps": 20, "batch_size": 16, "lr": 0.001, "max_length": 32, "eval_every": 10,
                   "log_every": 10},
    "seeds": [1],
    # one thread for the demo's base model too: the suite's other worker has the second core
    "compute": {"demo": {"gpus": 0, "threads": 1}},
}


def clone(dest: Path) -> Path:
    """The repository's files as a fresh clone has them (tracked, or new and not ignored): no results, no logs."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """One clone for the tests that only dry-run (they write nothing into it)."""
    return clone(tmp_path_factory.mktemp("clone"))


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


def madx_commands(output: str, name: str) -> list[list[str]]:
    """The `madx <name>` commands of a dry run's jobs (`-n -p`), each as the words the shell would pass to madx
    (up to the redirection to the job's log)."""
    lines = [line.removeprefix("Shell command: ") for line in output.splitlines() if line.startswith("Shell command:")]
    commands = [shlex.split(line) for line in lines if f" {name} " in line]
    return [list(takewhile(lambda word: word != ">", words)) for words in commands]


def after(words: list[str], name: str) -> list[list[str]]:
    """The words after each `name` option up to the next option: one list per time the option is given."""
    return [list(takewhile(lambda w: not w.startswith("--"), words[i + 1:])) for i, w in enumerate(words) if w == name]


def values(words: list[str], name: str) -> list[str]:
    return [value for found in after(words, name) for value in found]


def option(words: list[str], name: str) -> str:
    [value] = values(words, name)
    return value


def eval_runs(words: list[str]) -> list[tuple]:
    """An evaluate command's runs: its `--run SETUP SEED TASK_DIR [LANG_ADAPTER ...]` options."""
    return [tuple(run) for run in after(words, "--run")]


def write_config(directory: Path, config: dict, name: str = "config.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def demo_config(languages=("en", "qac"), results="results", tasks=("ner",)) -> dict:
    """The shipped demo config, reduced, with only these demo languages and tasks."""
    config = yaml.safe_load((REPO / "configs" / "config.yaml").read_text())
    for key, value in REDUCED.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) and key in config else value
    config["demo"]["languages"] = {lang: config["demo"]["languages"][lang] for lang in languages}
    config["languages"] = {lang: entry for lang, entry in config.get("languages", {}).items() if lang in languages}
    if "qad" in config["languages"]:  # both new-script setups (the shipped config runs madx_translit alone), with
        # a tokenizer of its own within the reduced corpus's word types
        config["languages"]["qad"].update(setups=["madx_translit", "madx_emb"],
                                          embeddings={"mode": "new", "vocab_size": 120, "lr": 0.005})
    if not config["languages"]:
        del config["languages"]
    config["tasks"] = {name: spec for name, spec in config["tasks"].items() if name in tasks}
    for spec in config["tasks"].values():  # the reduced budget for every task; fusions of the tasks kept
        if "madx_tlr" in spec.get("setups", ()):  # the shipped ner's own setups, the config's and madx_tlr: the config's
            del spec["setups"]
        spec.get("train_task", {}).pop("max_steps", None)
        if isinstance(spec.get("languages"), list):  # the task's targets among the languages kept
            spec["languages"] = [lang for lang in spec["languages"] if lang in languages]
        spec["fuse"] = [other for other in spec.get("fuse", ()) if other in tasks]
        if not spec["fuse"]:
            del spec["fuse"]
    given = [spec.get("knowledge") or () for spec in config["tasks"].values()]  # [names] or {use: [names], ...}
    used = {k for knowledge in given for k in (knowledge["use"] if isinstance(knowledge, dict) else knowledge)}
    config["knowledge"] = {name: {**entry, "kadapter": {**entry["kadapter"], "layers": [0, 1, 2]},
                                  "train_knowledge": {**entry["train_knowledge"], **REDUCED_KNOWLEDGE}}
                           for name, entry in config.get("knowledge", {}).items() if name in used}
    if not config["knowledge"]:  # the K-adapters of the tasks kept, on the reduced base's two layers
        del config["knowledge"]
    if results != "results":  # move every output path under another root
        text = yaml.safe_dump(config).replace("results/", "RESULTS_ROOT/")
        config = yaml.safe_load(text)
        config = json.loads(json.dumps(config).replace("RESULTS_ROOT", results))
        config["results"] = results
    return config


def test_dry_run_of_the_demo_from_the_root(checkout):
    """`snakemake -n`, no --configfile: the demo (configs/config.yaml), every one of its languages."""
    proc = run(["-n"], cwd=checkout)
    counts = job_counts(proc.stdout)
    config = yaml.safe_load((REPO / "configs" / "config.yaml").read_text())
    n_lang, n_task = len(config["demo"]["languages"]), len(config["tasks"])
    # an evaluation job per task and target (its languages, or all of them)
    evaluations = sum(n_lang if task["languages"] == "all" else len(task["languages"]) for task in config["tasks"].values())
    # a training per task, setup that trains (source_la evaluates madx's) and seed; a fusion per fusing task and seed
    trainings = sum(len(set(task.get("setups", config["setups"])) - {"source_la"}) + ("fuse" in task)
                    for task in config["tasks"].values())
    no_corpus = [lang for lang, entry in config["languages"].items() if "related" in entry]
    assert counts == {"demo_language": n_lang, "demo_readme": 1, "demo_base_model": 1,
                      "train_lang_adapter": n_lang - len(no_corpus), "train_script_adapter": 1,
                      "train_task": trainings * len(config["seeds"]), "evaluate": evaluations, "report": 1, "all": 1}
    assert n_task == 4  # every task family: ner, classification, multiple choice, qa
    assert config["tasks"]["name_kind"]["fuse"] == ["ner"] and trainings == 11  # ner's madx_tlr too
    # qad's new-script adapter (madx_translit; madx_emb is left out of the Quickstart), in qad's jobs only
    assert "wildcards: kind=emb" not in proc.stdout and "wildcards: kind=translit, lang=qad" in proc.stdout
    proc = run(["-n", "-p"], cwd=checkout)
    evaluations = [line for line in proc.stdout.splitlines() if line.startswith("Shell command:") and " evaluate " in line]
    for command in evaluations:
        assert ("--run madx_translit" in command) == ("--lang qad" in command), command
        assert "--run madx_emb" not in command, command
        assert ("--romanize demo" in command) == ("--lang qad" in command), command
        # madx_fusion: name_kind's fusion under the target's language adapter; full_ft for ner only
        words = shlex.split(command)
        runs = {(setup, seed): rest for setup, seed, *rest in eval_runs(words)}
        lang = option(words, "--lang")
        if option(words, "--task") == "name_kind":
            assert runs[("madx_fusion", "1")] == ["results/tasks/name_kind/en/madx_fusion/seed1", f"results/adapters/lang/{lang}"]
        assert any(setup == "madx_fusion" for setup, _ in runs) == (option(words, "--task") == "name_kind")
        assert any(setup == "full_ft" for setup, _ in runs) == (option(words, "--task") == "ner")
    [fusion] = [c for c in madx_commands(proc.stdout, "train-task") if option(c, "--setup") == "madx_fusion"
                and option(c, "--seed") == "1"]
    assert values(fusion, "--fuse") == ["results/tasks/name_kind/en/madx/seed1", "results/tasks/ner/en/madx/seed1"]
    assert option(fusion, "--lang-adapter") == "results/adapters/lang/en" and option(fusion, "--fusion-config") == "dynamic"


def test_a_given_config_is_the_whole_config(checkout):
    """`--configfile configs/xlmr-wikiann.yaml` runs that file alone: none of the demo's languages, settings or
    rules are merged into it, and the report names it."""
    proc = run(["-n", "-p", "--configfile", "configs/xlmr-wikiann.yaml"], cwd=checkout)
    counts = job_counts(proc.stdout)
    config = yaml.safe_load((REPO / "configs" / "xlmr-wikiann.yaml").read_text())
    # the paper's Table 2: its 16 languages each a source and a target; beyond it hi (a target, with an adapter)
    # and three targets without a corpus, evaluated on their related languages' adapters
    sources, no_corpus = config["source_languages"], ["mr", "bn", "ta"]
    assert len(sources) == 16 and all("related" in config["languages"][lang] for lang in no_corpus)
    n_lang = len(config["languages"])
    assert counts == {"train_lang_adapter": n_lang - len(no_corpus), "train_task": 16 * 3 * len(config["seeds"]),
                      "evaluate": 16 * n_lang, "report": 1, "all": 1}
    mr = [c for c in proc.stdout.splitlines() if " evaluate " in c and "--lang mr " in c and "--source en " in c]
    assert len(mr) == 1 and "--run madx_avg 1 results/xlmr-wikiann/tasks/ner/en/madx/seed1 " \
        "results/xlmr-wikiann/adapters/lang/hi results/xlmr-wikiann/adapters/lang/en " \
        "results/xlmr-wikiann/adapters/lang/ar" in mr[0] and "--run madx 1" not in mr[0]
    assert "madx results: configs/xlmr-wikiann.yaml" in proc.stdout
    assert "--line-by-line" not in proc.stdout and "results/demo" not in proc.stdout  # the demo's settings
    # its own results folder and logs: the demo's run and this one never touch each other's files
    outputs = re.findall(r"^    (?:output|log): (.+)$", proc.stdout, re.M)
    assert outputs and all(o.startswith(("results/xlmr-wikiann/", "logs/xlmr-wikiann/")) for o in outputs)
    assert "wildcards: lang=qaa" not in proc.stdout
    # the paper's per-language budgets (the config cites where they come from): fewer steps for smaller Wikipedias
    steps = {re.search(r"--lang (\S+)", c).group(1): int(re.search(r"--max-steps (\d+)", c).group(1))
             for c in proc.stdout.splitlines() if " train-lang " in c}
    assert steps == {**dict.fromkeys(["en", "ja", "zh", "ar"], 250000),
                     **dict.fromkeys(["jv", "sw", "is", "my", "hi"], 100000),
                     **dict.fromkeys(["qu", "cdo", "ilo", "xmf", "mi", "mhr", "tk", "gn"], 50000)}


def test_the_published_adapters_config_dry_runs_from_the_hub_cache(checkout, tmp_path, monkeypatch):
    """configs/xlmr-wikiann-published.yaml: the MAD-X collection's language adapters by hub id, resolved before the
    DAG from the hub cache (offline): no language adapter trained but hi's, every job reads the ids; with one id not
    cached the dry run stops, naming it and the command that downloads it."""
    import madx
    from hubcache import publish
    from tiny import tiny_model

    config = yaml.safe_load((REPO / "configs" / "xlmr-wikiann-published.yaml").read_text())
    ids = {lang: entry["adapter"] for lang, entry in config["languages"].items() if "adapter" in entry}
    assert len(ids) == 16 and all(i == f"AdapterHub/xlm-roberta-base-{lang}-wiki_pfeiffer" for lang, i in ids.items())
    cache = tmp_path / "hub"
    model = tiny_model()
    madx.add_adapter(model, "lang", madx.LANGUAGE_ADAPTER)
    madx.save_adapter(model, "lang", tmp_path / "adapter")
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.json").write_text(json.dumps({"model_type": "xlm-roberta"}))
    publish(cache, config["base_model"], tmp_path / "base", "e" * 40)
    for adapter_id in list(ids.values())[1:]:
        publish(cache, adapter_id, tmp_path / "adapter", "f" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    proc = run(["-n", "--configfile", "configs/xlmr-wikiann-published.yaml"], cwd=checkout, check=False)
    assert proc.returncode != 0
    assert (f"languages.en.adapter: adapter {ids['en']}: not in the hub cache, and the hub cannot be reached "
            f"(HF_HUB_OFFLINE set, or no network); download it where there is network (hf download {ids['en']})") \
        in proc.stdout + proc.stderr, proc.stdout[-2000:] + proc.stderr[-2000:]
    publish(cache, ids["en"], tmp_path / "adapter", "f" * 40)
    proc = run(["-n", "-p", "--configfile", "configs/xlmr-wikiann-published.yaml"], cwd=checkout)
    assert job_counts(proc.stdout) == {"train_lang_adapter": 1, "train_task": 2 * 5, "evaluate": 17, "report": 1,
                                       "all": 1}
    [training] = [w for w in madx_commands(proc.stdout, "train-task") if option(w, "--setup") == "madx"
                  and option(w, "--seed") == "1"]
    assert option(training, "--lang-adapter") == ids["en"]
    [sw] = [w for w in madx_commands(proc.stdout, "evaluate") if option(w, "--lang") == "sw"]
    assert ("madx", "1", "results/xlmr-wikiann-published/tasks/ner/en/madx/seed1", ids["sw"]) in eval_runs(sw)


def test_tasks_that_fuse_each_other_make_no_cycle(checkout, tmp_path):
    """The AdapterFusion paper's setup, every task fusing all the others: each fusion reads the others' madx
    trainings, so the DAG has a fusion per task and seed, each after the madx trainings it fuses."""
    config = demo_config(("en", "qac"), tasks=("ner", "name_kind"))
    config["tasks"]["ner"]["fuse"], config["tasks"]["name_kind"]["fuse"] = ["name_kind"], ["ner"]
    proc = run(["-n", "-p", "--configfile", str(write_config(tmp_path, config))], cwd=checkout)
    fusions = [c for c in madx_commands(proc.stdout, "train-task") if option(c, "--setup") == "madx_fusion"]
    assert sorted((option(c, "--task"), values(c, "--fuse")[1]) for c in fusions) == [
        ("name_kind", "results/tasks/ner/en/madx/seed1"), ("ner", "results/tasks/name_kind/en/madx/seed1")]


@pytest.mark.parametrize("name,tasks,targets", [
    ("xlmr-xcopa", {"siqa": 1, "copa": 11}, None), ("xlmr-xquad", {"squad": 12}, None),
    ("xlmr-xnli", {"xnli": 15}, None)])
def test_paper_configs_of_the_other_task_families_dry_run(checkout, name, tasks, targets):
    """The XCOPA (two-stage: SIQA, then COPA), XQuAD and XNLI configs dry-run offline: a task training per task,
    setup and seed, an evaluation job per target; COPA's training starts from SIQA's of the same setup and seed."""
    proc = run(["-n", "-p", "--configfile", f"configs/{name}.yaml"], cwd=checkout)
    config = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
    counts = job_counts(proc.stdout)
    assert counts["train_task"] == len(tasks) * 3 * len(config["seeds"])
    assert counts["evaluate"] == sum(tasks.values()) and counts["train_lang_adapter"] == len(config["languages"])
    if name == "xlmr-xcopa":
        copa = [c for c in proc.stdout.splitlines() if " train-task " in c and "--task copa" in c]
        assert len(copa) == 15
        for command in copa:
            setup, seed = re.search(r"--setup (\w+) --seed (\d+)", command).groups()
            assert f"--init-from results/xlmr-xcopa/tasks/siqa/en/{setup}/seed{seed}" in command
    if name == "xlmr-xquad":
        assert all("--max-length 384" in c and "--doc-stride 128" in c
                   for c in proc.stdout.splitlines() if " train-task " in c)


# Justified exclusion: madx rules run the `madx` CLI of the environment the project installs (pip, with
# torch first; README); a per-rule conda env or container would duplicate that install for every job.
ALLOWED_LINTS = ("Specify a conda environment or container for each rule.",)


def test_lint_is_clean(checkout):
    proc = run(["--lint"], cwd=checkout, check=False)
    found = re.findall(r"^    \* (.+):$", proc.stdout + proc.stderr, re.M)
    assert [lint for lint in found if lint not in ALLOWED_LINTS] == [], proc.stdout + proc.stderr
    assert len(found) == 9  # the allowed one, once per rule


# Each case as `snakemake` sees it would cost 3 s; the config check Snakemake runs is checked in-process for
# every case, and through Snakemake itself for the cases marked THROUGH_SNAKEMAKE.
THROUGH_SNAKEMAKE = ("unknown key 'bogus'", "languages.qae.corpus: file 'results/demo/data/corpora/qae.txt'",
                     "tasks.ner.test \\(qae\\)")


@pytest.mark.parametrize("edit,message", [
    (lambda c: c.update(bogus=1), "unknown key 'bogus'"),
    (lambda c: c.update(languages={"xx": {"corpuss": "x.txt"}}), "languages.xx: unknown key 'corpuss'"),
    (lambda c: c["demo"]["languages"]["qac"].update(order="SOV"), "demo.languages.qac: unknown key 'order'"),
    (lambda c: c["demo"]["languages"]["qac"].update(script="greek"), "demo.languages.qac.script: 'greek' is not one"),
    (lambda c: c["tasks"]["ner"].update(type="nli"), "tasks.ner.type: 'nli' is not one of"),
    (lambda c: c.update(languages={"zz": {}}), "languages.zz: needs a corpus"),
    (lambda c: c.update(seeds=[1, 1]), "seeds: \\[1, 1\\] has non-unique elements"),
    (lambda c: c.update(seeds="1"), "seeds: '1' is not of type 'array'"),
    (lambda c: c.update(languages={"qae": {"corpus": "missing/corpus.txt"}}),
     "languages.qae.corpus: file 'missing/corpus.txt' not found"),
    (lambda c: c["tasks"]["ner"].update(languages=["en", "xx"]), "tasks.ner.languages: \\['xx'\\] not under languages"),
    (lambda c: c.update(source_language="de"), "source_language: 'de' not among languages"),
    (lambda c: c.update(source_languages=["en", "xx"]), "give either source_language \\(one\\) or source_languages"),
    (lambda c: c["lang_adapter"].update(reduction_factor=0), "lang_adapter: reduction_factor=0 must be a positive"),
    (lambda c: c["train_lang"].update(compile="fast"), "train_lang.compile: 'fast' is not valid"),
    (lambda c: c["train_lang"].update(max_steps=0), "train_lang.max_steps: 0 must be at least 1"),
    (lambda c: c["full_ft"].update(lr=-1.0), "full_ft.lr: -1.0 must be positive"),
    (lambda c: c["train_task"].update(seed=3), "train_task: unknown key 'seed'"),
    (lambda c: c.update(languages={"qac": {"train_lang": {"max_steps": 0}}}),
     "languages.qac.train_lang.max_steps: 0 must be at least 1"),
    (lambda c: c.update(languages={"qac": {"max_tokens": 5, "train_lang": {"max_tokens": 9}}}),
     "languages.qac: max_tokens is given twice"),
    (lambda c: c["tasks"]["ner"].update(init_from="nope"), "tasks.ner.init_from: 'nope' is not a task"),
    (lambda c: c["tasks"].update(kind={**c["tasks"]["ner"], "type": "classification", "init_from": "ner"}),
     "tasks.kind.init_from: 'ner' is a ner task, 'kind' a classification one"),
    (lambda c: c["tasks"].update(ner2={**c["tasks"]["ner"], "init_from": "ner2"}),
     "tasks.ner2.init_from: a cycle \\(ner2 -> ner2\\)"),
    (lambda c: c["tasks"]["ner"].update(train_task={"n_best": 0}), "tasks.ner.train_task.n_best: 0 must be at least 1"),
    (lambda c: c["tasks"]["ner"].update(fuse=["pos"]), "tasks.ner.fuse: \\['pos'\\] not a task here"),
    (lambda c: c["tasks"]["ner"].update(fuse=["ner"]), "tasks.ner.fuse: 'ner' fuses itself"),
    (lambda c: c.update(setups=["madx", "madx_fusion"]), "setups: madx_fusion runs for the tasks that fuse others"),
    (lambda c: c["tasks"]["ner"].update(setups=["madx_fusion"]), "tasks.ner.setups: madx_fusion runs for the tasks"),
    (lambda c: c["tasks"]["ner"].update(fusion="mean"), "tasks.ner.fusion: 'mean' is not one of"),
    (lambda c: c["tasks"]["ner"].update(fusion="static"), "tasks.ner.fusion: given without fuse, so no fusion runs"),
    # the case: a language whose data the demo does not make (it is not one of demo.languages)
    (lambda c: c.update(languages={"qae": {"corpus": "results/demo/data/corpora/qae.txt"}}),
     "languages.qae.corpus: file 'results/demo/data/corpora/qae.txt' not found \\(the demo makes files there only "
     "for its languages: add the language to demo.languages\\)"),
    (lambda c: c.update(languages={"qae": {"adapter": "{ADAPTER}"}}),
     "tasks.ner.test \\(qae\\): file 'results/demo/data/ner/qae.test.conll' not found"),
])
def test_invalid_config_fails_before_any_job(checkout, tmp_path, edit, message, ready_adapter, monkeypatch):
    from madx.experiment import ConfigError, load_experiment_file

    config = demo_config()
    edit(config)
    text = yaml.safe_dump(config).replace("{ADAPTER}", str(ready_adapter))
    (tmp_path / "config.yaml").write_text(text)
    monkeypatch.chdir(checkout)  # relative paths are read from where Snakemake runs: the clone's root
    with pytest.raises(ConfigError, match=message):
        load_experiment_file(tmp_path / "config.yaml")
    if not any(message.startswith(case) for case in THROUGH_SNAKEMAKE):
        return
    proc = run(["-n", "--configfile", str(tmp_path / "config.yaml")], cwd=checkout, check=False)
    assert proc.returncode != 0
    assert re.search(message, proc.stdout + proc.stderr), proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"invalid config: {tmp_path / 'config.yaml'}:" in proc.stdout + proc.stderr  # names the file given
    assert not (checkout / "results").exists()


@pytest.fixture(scope="module")
def ready_adapter(tmp_path_factory) -> Path:
    """A language adapter directory (AdapterHub format) for a tiny model."""
    import madx
    from tiny import tiny_model

    path = tmp_path_factory.mktemp("adapter") / "qae"
    model = tiny_model()
    madx.add_adapter(model, "qae", madx.LANGUAGE_ADAPTER)
    madx.save_adapter(model, "qae", path)
    return path


def test_a_target_without_a_corpus_is_evaluated_on_its_related_languages_adapters(checkout):
    """A demo language with `related` and no corpus: its test data is made, no adapter is trained for it, and its
    evaluation job runs madx_nearest (the first related language's adapter) and madx_avg (the first k), no madx;
    each command's runs read back as the evaluate command parses them."""
    from madx.commands.evaluate import parser, runs_of

    config = demo_config(("en", "qaa", "qac"))
    config["demo"]["languages"]["qae"] = {"word_order": "SOV", "script": "latin"}
    config["languages"] = {"qae": {"related": ["qac", "qaa"]}}
    write_config(checkout, config, "related.yaml")
    proc = run(["-n", "-p", "--configfile", "related.yaml"], cwd=checkout)
    counts = job_counts(proc.stdout)
    assert (counts["demo_language"], counts["train_lang_adapter"], counts["evaluate"]) == (4, 3, 4)
    assert sorted(option(w, "--lang") for w in madx_commands(proc.stdout, "train-lang")) == ["en", "qaa", "qac"]
    [words] = [w for w in madx_commands(proc.stdout, "evaluate") if option(w, "--lang") == "qae"]
    runs = {setup: rest for setup, seed, *rest in eval_runs(words)}
    madx = "results/tasks/ner/en/madx/seed1"
    assert set(runs) == {"source_la", "task_only", "full_ft", "madx_nearest", "madx_avg", "madx_emea"}
    assert runs["madx_nearest"] == [madx, "results/adapters/lang/qac"]
    assert runs["madx_avg"] == [madx, "results/adapters/lang/qac", "results/adapters/lang/qaa"]
    parsed = {run.setup.name: run for run in runs_of(parser().parse_args(words[words.index("evaluate") + 1:]))}
    assert parsed["madx_avg"].lang_adapters == (Path("results/adapters/lang/qac"), Path("results/adapters/lang/qaa"))
    assert parsed["task_only"].lang_adapters == ()
    assert "--emea-steps 1 --emea-lr 10.0" in shlex.join(words) and parsed["madx_emea"].emea.steps == 1


def test_target_ready_task_adapters_train_over_every_targets_language_adapter(checkout):
    """madx_tlr: one task training per source and seed, over the source's language adapter and every target's in
    turn (tasks.<t>.tlr_languages: only those), evaluated like madx: the target's adapter under it."""
    config = demo_config(("en", "qaa", "qac"))
    config["setups"] = ["madx", "madx_tlr"]
    write_config(checkout, config, "tlr.yaml")
    proc = run(["-n", "-p", "--configfile", "tlr.yaml"], cwd=checkout)
    trainings = {option(words, "--setup"): words for words in madx_commands(proc.stdout, "train-task")}
    assert set(trainings) == {"madx", "madx_tlr"}
    tlr = trainings["madx_tlr"]
    assert option(tlr, "--lang-adapter") == "results/adapters/lang/en"
    assert values(tlr, "--tlr-adapters") == ["results/adapters/lang/qaa", "results/adapters/lang/qac"]
    assert "--tlr-adapters" not in trainings["madx"]
    [qac] = [w for w in madx_commands(proc.stdout, "evaluate") if option(w, "--lang") == "qac"]
    assert ("madx_tlr", "1", "results/tasks/ner/en/madx_tlr/seed1", "results/adapters/lang/qac") in eval_runs(qac)
    config["tasks"]["ner"]["tlr_languages"] = ["qac"]
    write_config(checkout, config, "tlr.yaml")
    proc = run(["-n", "-p", "--configfile", "tlr.yaml"], cwd=checkout)
    [tlr] = [w for w in madx_commands(proc.stdout, "train-task") if option(w, "--setup") == "madx_tlr"]
    assert values(tlr, "--tlr-adapters") == ["results/adapters/lang/qac"]


def test_ready_language_adapters_replace_training(tmp_path):
    """`languages.<lang>.adapter`: a ready (e.g. AdapterHub) language adapter is used as it is, for a target
    language and for the source language, and no language adapter is trained for either."""
    import madx
    from tiny import tiny_model

    repo = clone(tmp_path / "clone")
    ready = {}
    for lang in ("en", "qac"):
        ready[lang] = tmp_path / "hub adapters" / lang  # a space: the path must reach the commands quoted
        model = tiny_model()
        madx.add_adapter(model, lang, madx.LANGUAGE_ADAPTER)
        madx.save_adapter(model, lang, ready[lang])
    config = demo_config(("en", "qaa", "qac"))
    config["languages"] = {"en": {"adapter": str(ready["en"])}, "qac": {"adapter": str(ready["qac"])}}
    write_config(repo, config, "ready.yaml")
    proc = run(["-n", "-p", "--configfile", "ready.yaml"], cwd=repo)
    counts = job_counts(proc.stdout)
    assert counts["train_lang_adapter"] == 1 and "wildcards: lang=qaa" in proc.stdout  # only qaa is trained
    assert counts["evaluate"] == 3  # a job per target language, every setup and seed in it
    quoted = {lang: f"--lang-adapter '{path}'" for lang, path in ready.items()}
    commands = [line for line in proc.stdout.splitlines() if line.startswith("Shell command: madx launch")]
    madx_task = [c for c in commands if " train-task " in c and "--setup madx" in c]
    assert madx_task and all(quoted["en"] in c for c in madx_task)  # the source LA under the task adapter
    [qac_eval] = [c for c in commands if " evaluate " in c and "--lang qac" in c]
    for seed in config["seeds"]:  # swapped in for zero-shot transfer; the source's kept for source_la
        assert f"--run madx {seed} results/tasks/ner/en/madx/seed{seed} '{ready['qac']}'" in qac_eval
        assert f"--run source_la {seed} results/tasks/ner/en/madx/seed{seed} '{ready['en']}'" in qac_eval
