"""Bad input, table-driven: each case must fail with a clear message (what, where, what to do), before any
expensive work, and leave no output behind. Add a row when a new kind of bad input turns up."""

import json
import re
import shutil

import datasets
import pytest
import torch
import yaml

from madx.cli import main as cli


@pytest.fixture(scope="module")
def env(tiny_base, tmp_path_factory):
    data, base = tiny_base
    root = tmp_path_factory.mktemp("bad")
    # an adapter made for another base model (different hidden size)
    other = root / "other_base"
    shutil.copytree(base, other)
    config = json.loads((other / "config.json").read_text())
    config.update(hidden_size=32, intermediate_size=64)
    (other / "config.json").write_text(json.dumps(config))
    (other / "model.safetensors").unlink()
    import transformers

    import madx

    model = transformers.AutoModelForMaskedLM.from_config(transformers.AutoConfig.from_pretrained(other))
    madx.add_adapter(model, "en", madx.LANGUAGE_ADAPTER)
    madx.save_adapter(model, "en", root / "foreign_adapter")
    good = transformers.AutoModelForMaskedLM.from_pretrained(base)
    madx.add_adapter(good, "en", madx.LANGUAGE_ADAPTER)
    madx.save_adapter(good, "en", root / "truncated_adapter")
    weights = root / "truncated_adapter" / "adapter.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    datasets.Dataset.from_dict({"text": ["a b c"] * 10}).to_parquet(str(root / "hubdata" / "train.parquet"))
    # base models without their tokenizer: no tokenizer files at all; only files transformers 5 reads, for this
    # model type, as an empty 5-token tokenizer (every word <unk>)
    for name in ("no_tokenizer_base", "vocab_txt_base"):
        shutil.copytree(base, root / name)
        (root / name / "tokenizer.json").unlink()
    (root / "vocab_txt_base" / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nAnna\n")
    # a trained task adapter, for evaluations
    assert cli(task_args((data, base, root), **{"--output": str(root / "trained_task")})) == 0
    return data, base, root


def lang_args(env, **overrides):
    data, base, root = env
    args = {"--base-model": str(base), "--lang": "qac", "--corpus": str(data / "corpora/qac.txt"),
            "--output": str(root / "out" / "la"), "--seq-len": "48", "--max-steps": "2", "--batch-size": "4"}
    args.update(overrides)
    return ["train-lang", *[x for kv in args.items() for x in kv]]


def task_args(env, **overrides):
    data, base, root = env
    args = {"--base-model": str(base), "--task": "ner", "--setup": "task_only",
            "--train": str(data / "ner/en.train.conll"), "--dev": str(data / "ner/en.dev.conll"),
            "--output": str(root / "out" / "task"), "--max-length": "48", "--max-steps": "2", "--batch-size": "4"}
    args.update(overrides)
    return ["train-task", *[x for kv in args.items() for x in kv]]


def adapter_config_only(path, adapter):
    path.mkdir(exist_ok=True)
    shutil.copy(adapter / "adapter_config.json", path)
    return str(path)


def empty_dir(path):
    path.mkdir(exist_ok=True)
    return str(path)


def write(root, name, content, mode="w"):
    path = root / name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return str(path)


def demo_config(env):
    data, base, _ = env
    return {"base_model": str(base), "source_language": "en",
            "languages": {"en": {"corpus": str(data / "corpora/en.txt")},
                          "qac": {"corpus": str(data / "corpora/qac.txt")}},
            "tasks": {"ner": {"type": "ner", "train": str(data / "ner/{lang}.train.conll"),
                              "dev": str(data / "ner/{lang}.dev.conll"), "test": str(data / "ner/{lang}.test.conll")}}}


def eval_args(env, *args):
    data, base, root = env
    return ["evaluate", "--base-model", str(base), "--test", str(data / "ner/en.test.conll"), "--task", "ner",
            "--lang", "en", "--output", str(root / "out" / "eval.json"), *args]


def config_file(env, edit):
    config = demo_config(env)
    edit(config)
    return write(env[2], "config.yaml", yaml.safe_dump(config))


def edit_language(lang, **entry):
    return lambda c: c["languages"][lang].update(entry)


CASES = {
    "invalid YAML": (lambda e: ["check-config", write(e[2], "bad.yaml", "base_model: x\nlanguages: [\n  en: 1\n")],
                     r"bad.yaml:\d+: invalid YAML"),
    "unknown config key": (lambda e: ["check-config", config_file(e, lambda c: c.update(bogus=1))],
                           r"config.yaml: \(top level\): unknown key 'bogus'"),
    "missing corpus file": (lambda e: lang_args(e, **{"--corpus": "/nowhere/qac.txt"}), r"/nowhere/qac.txt: file not found"),
    "empty corpus file": (lambda e: lang_args(e, **{"--corpus": write(e[2], "empty.txt", "")}), r"empty.txt: file is empty"),
    "CoNLL line with wrong columns": (
        lambda e: task_args(e, **{"--train": write(e[2], "cols.conll", "Anna\tB-PER\nsang\tO\tx\n")}),
        r"cols.conll:2: 3 column\(s\), expected 2"),
    "label outside the source set": (
        lambda e: task_args(e, **{"--dev": write(e[2], "dev.conll", "Anna\tB-PER\n\nOslo\tB-MISC\n")}),
        r"dev.conll:3: label 'B-MISC' \(token 'Oslo'\) is not in the source training labels"),
    "target language without test data": (
        lambda e: ["check-config", config_file(e, lambda c: c["languages"].update(
            qxx={"corpus": str(e[0] / "corpora/qac.txt")}))],
        r"tasks.ner.test \(qxx\): file '.*qxx.test.conll' not found"),
    "ready language adapter made for another base model": (
        lambda e: ["check-config", config_file(e, lambda c: c["languages"].update(
            qac={"adapter": str(e[2] / "foreign_adapter")}))],
        r"languages.qac.adapter: '.*foreign_adapter' was made for hidden_size 32, base_model '.*' has 64"),
    "ready language adapter without weights": (
        lambda e: ["check-config", config_file(e, lambda c: c["languages"].update(
            qac={"adapter": adapter_config_only(e[2] / "no_weights", e[2] / "foreign_adapter")}))],
        r"languages.qac.adapter: '.*no_weights' has adapter_config.json but no weights"),
    "adapter made for another base model": (
        lambda e: task_args(e, **{"--setup": "madx", "--lang-adapter": str(e[2] / "foreign_adapter")}),
        r"foreign_adapter/adapter_config.json: adapter was made for hidden size 32, the model has 64"),
    "truncated safetensors file": (
        lambda e: task_args(e, **{"--setup": "madx", "--lang-adapter": str(e[2] / "truncated_adapter")}),
        r"truncated_adapter/adapter.safetensors: cannot be read .* truncated or corrupt"),
    "sequence length beyond the position limit": (lambda e: lang_args(e, **{"--seq-len": "4096"}),
                                                  r"seq_len=4096 is beyond .* position limit of 48 tokens"),
    "bf16 on a machine without it": (lambda e: lang_args(e, **{"--mixed-precision": "bf16"}),
                                     r"mixed_precision=bf16 needs a CUDA GPU"),
    "base model path that does not exist": (lambda e: lang_args(e, **{"--base-model": str(e[2] / "no_model")}),
                                            r"base_model '.*/no_model': no such local directory"),
    "base model directory without a config": (lambda e: lang_args(e, **{"--base-model": str(e[2])}),
                                              r"cannot load its config .*; give a local directory with config.json"),
    "report of a directory without results": (lambda e: ["report", "--eval", empty_dir(e[2] / "evals"), "--output",
                                                        str(e[2] / "rep")],
                                     r"no evaluation JSON files there; run madx evaluate first"),
    "evaluation run with a malformed --run": (
        lambda e: eval_args(e, "--run", "madx", "one", str(e[2] / "task"), "--each", "{setup}-{seed}.json"),
        r"--run madx one .*: expected SETUP SEED TASK_DIR \[LANG_ADAPTER \.\.\.\] with SETUP one of"),
    "evaluation runs without a per-run result pattern": (
        lambda e: eval_args(e, "--run", "task_only", "1", str(e[2] / "task")),
        r"--each None: with --run, give each run's result path with \{setup\} and \{seed\}"),
    "madx evaluation without its language adapter": (
        lambda e: eval_args(e, "--run", "madx", "1", str(e[2] / "task"), "--each", "{setup}-{seed}.json"),
        r"setup madx \(seed 1\) needs a language adapter"),
    "inspect a missing adapter directory": (lambda e: ["inspect", str(e[2] / "no_such_adapter")],
                                            r"no_such_adapter: adapter directory not found"),
    # a base model without its tokenizer: every job that loads one refuses it, naming the directory
    "base model directory without tokenizer files": (
        lambda e: lang_args(e, **{"--base-model": str(e[2] / "no_tokenizer_base")}),
        r"base_model '.*no_tokenizer_base': no tokenizer files there \(none of tokenizer.json, .*\); save the model's "
        r"tokenizer beside it"),
    "base model whose tokenizer does not fit its embedding rows": (
        lambda e: task_args(e, **{"--base-model": str(e[2] / "vocab_txt_base")}),
        r"base_model '.*vocab_txt_base': its vocab.txt has 6 entries for the model's \d+ embedding rows"),
    "evaluation on a base model without tokenizer files": (
        lambda e: eval_args(e, "--base-model", str(e[2] / "no_tokenizer_base"), "--run", "task_only", "1",
                            str(e[2] / "trained_task"), "--each", str(e[2] / "out" / "{setup}-{seed}.json")),
        r"base_model '.*no_tokenizer_base': no tokenizer files there"),
    # the config check: before any job, naming the file and the key (and the line)
    "config with a duplicate key": (
        lambda e: ["check-config", write(e[2], "dup.yaml", yaml.safe_dump(demo_config(e)) + "seeds: [1, 2]\n"
                                         "seeds: [7]\n")],
        r"dup.yaml:\d+: seeds: duplicate key \(first at line \d+\); YAML would silently keep only the last"),
    "language code with a slash": (
        lambda e: ["check-config", config_file(e, lambda c: c["languages"].update({"a/b": {"corpus": "x.txt"}}))],
        r"config.yaml: languages: 'a/b' is not a valid language code: letters, digits, '-' and '_' only"),
    "sequence length with no room for a masked token": (
        lambda e: ["check-config", config_file(e, lambda c: c.update(train_lang={"seq_len": 1}))],
        r"config.yaml: train_lang.seq_len: 1 must be at least 3 \(room for <s>, </s> and one token to mask\)"),
    "no training steps for one language": (
        lambda e: ["check-config", config_file(e, edit_language("qac", train_lang={"max_steps": 0}))],
        r"config.yaml: languages.qac.train_lang.max_steps: 0 must be at least 1"),
    "task training batch of 0": (
        lambda e: ["check-config", config_file(e, lambda c: c.update(train_task={"batch_size": 0}))],
        r"config.yaml: train_task.batch_size: 0 must be at least 1"),
    "base model directory that does not exist (config)": (
        lambda e: ["check-config", config_file(e, lambda c: c.update(base_model=str(e[2] / "no_model")))],
        r"config.yaml: base_model '.*no_model': no such local directory"),
    "base model directory without tokenizer files (config)": (
        lambda e: ["check-config", config_file(e, lambda c: c.update(base_model=str(e[2] / "no_tokenizer_base")))],
        r"config.yaml: base_model '.*no_tokenizer_base': no tokenizer files there"),
    "ready language adapter directory that does not exist": (
        lambda e: ["check-config", config_file(e, edit_language("qac", adapter=str(e[2] / "no_adapter")))],
        r"config.yaml: languages.qac.adapter: adapter directory '.*no_adapter' not found"),
    "dataset column that does not exist": (
        lambda e: lang_args(e, **{"--corpus": f"hub:{e[2] / 'hubdata'}?split=train&column=content"}),
        r"no column 'content'; it has \['text'\]; set column="),
}


# a case that is bad input only on some machines, and what makes it so
ONLY_WHERE = {
    "bf16 on a machine without it": (lambda: not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()),
                                     "this machine has a GPU with bf16: bf16 is valid here"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input(env, case, capsys):
    if case in ONLY_WHERE and not ONLY_WHERE[case][0]():
        pytest.skip(ONLY_WHERE[case][1])
    make_args, message = CASES[case]
    args = make_args(env)
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err[-2000:]
    assert "Traceback" not in err
    assert len(re.findall(message, err)) == 1, err[-2000:]  # said once
    # nothing written (a corpus cache directory may exist; no output does): the check ran before any work
    assert not (env[2] / "out" / "la").exists() and not (env[2] / "out" / "task").exists()
    assert not list((env[2] / "out").glob("*.work")) if (env[2] / "out").exists() else True


def test_invalid_utf8_lines_are_skipped_and_counted(env, capsys):
    data, _, root = env
    corpus = write(root, "mixed.txt", data.joinpath("corpora/qac.txt").read_bytes()[:4000] + b"\nbad \xff\xfe\n" * 3)
    out = root / "utf8_la"
    assert cli(lang_args(env, **{"--corpus": corpus, "--output": str(out)})) == 0
    assert "mixed.txt: skipped 3 line(s) that are not valid UTF-8" in capsys.readouterr().err
    assert (out / "adapter.safetensors").exists()
