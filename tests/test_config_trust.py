"""The config check refuses, before any job, what would make a job fail late or write a wrong number: duplicate
keys, bad names, settings out of their bounds (each naming the key the user wrote), missing local paths, a base
model without its tokenizer. And the workflow rebuilds every lost adapter, trains the adapter of a language no task
evaluates, and starts the source language's adapter first."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from madx.core.settings import AT_LEAST, POSITIVE, SCRIPT_KEYS, LangTraining, SettingError, TaskTraining
from madx.experiment import ConfigError, config_schema, load_experiment, load_experiment_file, load_yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def demo(**edits) -> dict:
    """The shipped demo config (its base model is built by the workflow), with top-level edits."""
    config = yaml.safe_load((REPO / "configs" / "config.yaml").read_text())
    config.update(edits)
    return config


@pytest.fixture(scope="module")
def local_tree(tmp_path_factory) -> tuple[Path, Path]:
    """(data dir, base model dir) of files as the config check sees them: a base model's config.json and
    tokenizer.json (no weights: nothing here loads the model), corpora and CoNLL files."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    root = tmp_path_factory.mktemp("tree")
    base = root / "base"
    base.mkdir()
    vocab = {token: i for i, token in enumerate(["<s>", "<pad>", "</s>", "<unk>", *"abcdefghijklmnop", "<mask>"])}
    Tokenizer(WordLevel(vocab, unk_token="<unk>")).save(str(base / "tokenizer.json"))
    (base / "config.json").write_text(json.dumps({"model_type": "xlm-roberta", "vocab_size": len(vocab),
                                                  "max_position_embeddings": 50, "pad_token_id": 1}))
    for lang in ("en", "qab", "qac"):
        (root / "corpora").mkdir(exist_ok=True)
        (root / "corpora" / f"{lang}.txt").write_text("a b c\n" * 10)
        (root / "ner").mkdir(exist_ok=True)
        for split in ("train", "dev", "test"):
            (root / "ner" / f"{lang}.{split}.conll").write_text("a\tB-PER\nb\tO\n")
    return root, base


def local_config(data: Path, base: Path, **edits) -> dict:
    """A config over local files (local_tree)."""
    config = {"base_model": str(base), "source_language": "en",
              "languages": {"en": {"corpus": str(data / "corpora/en.txt")},
                            "qac": {"corpus": str(data / "corpora/qac.txt")}},
              "tasks": {"ner": {"type": "ner", "train": str(data / "ner/{lang}.train.conll"),
                                "dev": str(data / "ner/{lang}.dev.conll"), "test": str(data / "ner/{lang}.test.conll")}},
              "seeds": [1], "setups": ["madx", "task_only"],
              "train_lang": {"seq_len": 32, "max_steps": 2}, "train_task": {"max_length": 32, "max_steps": 2}}
    config.update(edits)
    return config


def refused(config: dict, message: str, check_files: bool = True) -> None:
    with pytest.raises(ConfigError, match=message):
        load_experiment(config, "c.yaml", check_files=check_files)


# ---- duplicate keys


def test_a_duplicate_key_names_the_key_and_both_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("base_model: x\nseeds: [1, 2]\ntrain_lang:\n  max_steps: 5\n  lr: 0.1\n  max_steps: 7\n"
                    "seeds: [7]\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}:6: train_lang.max_steps: duplicate key (first at line 4)")):
        load_yaml(path)
    path.write_text("base_model: x\nseeds: [1, 2]\nseeds: [7]\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}:3: seeds: duplicate key (first at line 2)")):
        load_yaml(path)
    path.write_text("a: &x {b: 1}\nc:\n  <<: *x\n  d: 2\n")  # a merge key and an alias are no duplicates
    assert load_yaml(path) == {"a": {"b": 1}, "c": {"b": 1, "d": 2}}


# ---- names


@pytest.mark.parametrize("code", ["a/b", "..", "a b", "a;b"])
def test_a_language_code_is_letters_digits_dash_underscore(code):
    config = demo()
    config["languages"] = {code: {"corpus": "x.txt"}}
    refused(config, rf"c.yaml: languages: {re.escape(repr(code))} is not a valid language code: letters, digits")
    config = demo()
    config["demo"]["languages"][code] = {"seen": False}
    refused(config, rf"c.yaml: demo.languages: {re.escape(repr(code))} is not a valid language code")


def test_a_language_code_yaml_reads_as_a_boolean_says_to_quote_it(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("base_model: x\nsource_language: en\ntasks: {}\nlanguages:\n  en: {corpus: x.txt}\n"
                    "  no: {corpus: no.txt}\n")  # Norwegian
    with pytest.raises(ConfigError, match=r"c.yaml: languages: False is not a name: YAML read this key as a bool; "
                                          r"quote it \(e.g. 'no'"):
        load_experiment_file(path)


# ---- settings: bounds that make a job work, named at the key the user wrote


BOUNDS = [
    # the case: one token per sequence leaves no room for <s>, </s> and a token to mask
    (lambda c: c["train_lang"].update(seq_len=1), r"train_lang.seq_len: 1 must be at least 3 \(room for <s>, </s>"),
    (lambda c: c["train_lang"].update(max_steps=0), r"c.yaml: train_lang.max_steps: 0 must be at least 1$"),
    (lambda c: c.update(languages={"qad": {**c["languages"]["qad"], "train_lang": {"max_steps": 0}}}),
     r"c.yaml: languages.qad.train_lang.max_steps: 0 must be at least 1$"),
    (lambda c: c["train_task"].update(batch_size=0), r"c.yaml: train_task.batch_size: 0 must be at least 1$"),
    (lambda c: c["tasks"]["name_kind"]["train_task"].update(batch_size=0),
     r"c.yaml: tasks.name_kind.train_task.batch_size: 0 must be at least 1$"),
    (lambda c: c["full_ft"].update(lr=-1.0), r"c.yaml: full_ft.lr: -1.0 must be positive$"),
    (lambda c: c["train_task"].update(max_length=2), r"train_task.max_length: 2 must be at least 3 \(room for"),
    (lambda c: c["train_lang"].update(warmup_steps=-1), r"train_lang.warmup_steps: -1 must not be negative"),
    (lambda c: c["demo"]["pretrain"].update(max_steps=0), r"c.yaml: demo.pretrain.max_steps: 0 must be at least 1"),
    (lambda c: c.update(seeds=[-1]), r"c.yaml: seeds.0: -1 is less than the minimum of 0"),
    (lambda c: c["languages"]["qad"].update(setups=["madx_emb"], embeddings={"vocab_size": 8}),
     r"c.yaml: languages.qad.embeddings.vocab_size: 8 must be at least 16$"),
    (lambda c: c["languages"]["qad"].update(setups=["madx_emb"], embeddings={"lr": 0}),
     r"c.yaml: languages.qad.embeddings.lr: 0 must be positive$"),
    # what the schema cannot see: not a number, and bounds between two keys (each named where it was written)
    (lambda c: c["train_lang"].update(lr=float("nan")), r"c.yaml: train_lang.lr: nan must be a finite number$"),
    (lambda c: c["train_task"].update(grad_accum=3),
     r"c.yaml: train_task.batch_size and train_task.grad_accum: batch_size=32 is not a multiple of grad_accum=3"),
    (lambda c: c.update(languages={"qad": {**c["languages"]["qad"], "train_lang": {"grad_accum": 5}}}),
     r"train_lang.batch_size and languages.qad.train_lang.grad_accum: batch_size=48 is not a multiple"),
    (lambda c: c["demo"].update(num_attention_heads=3),
     r"c.yaml: demo.hidden_size: 128 is not a multiple of demo.num_attention_heads \(3\)"),
    (lambda c: c["demo"].update(dropout=1.0), r"c.yaml: demo.dropout: 1.0 must be in \[0, 1\)"),
    # the demo's shape has its own bounds (not the training settings' of the same name: vocab_size at least 16)
    (lambda c: c["demo"].update(vocab_size=0), r"c.yaml: demo.vocab_size: 0 must be at least 1$"),
    (lambda c: c["demo"].update(num_hidden_layers=0), r"c.yaml: demo.num_hidden_layers: 0 must be at least 1$"),
    (lambda c: c["demo"].update(max_seq_len=2), r"c.yaml: demo.max_seq_len: 2 must be at least 3 \(room for <s>"),
    # the demo's base model is built later, but its position table is known now
    (lambda c: c["train_lang"].update(seq_len=64),
     r"c.yaml: train_lang.seq_len: 64 is beyond the base model's position limit of 40 tokens \(demo.max_seq_len\)"),
    (lambda c: c["tasks"]["who_where"]["train_task"].update(max_length=41),
     r"c.yaml: tasks.who_where.train_task.max_length: 41 is beyond the base model's position limit of 40"),
    (lambda c: c["train_lang"].pop("seq_len"), r"c.yaml: train_lang.seq_len \(default\): 256 is beyond"),
]


@pytest.mark.parametrize("edit,message", BOUNDS)
def test_a_setting_out_of_its_bounds_names_the_key_written(edit, message):
    config = demo()
    edit(config)
    refused(config, message, check_files=False)


def test_the_training_settings_bounds_stay_out_of_the_demo_section():
    """demo.vocab_size is the demo tokenizer's size and demo.seed the benchmark's: no bound of train_lang's
    vocab_size (16) or seed (0) applies to them."""
    demo_schema = config_schema()["properties"]["demo"]["properties"]
    assert all("minimum" not in demo_schema[name] for name in ("vocab_size", "seed", "hidden_size")), demo_schema
    config = demo()
    config["demo"].update(vocab_size=8, seed=-1)
    exp = load_experiment(config, "c.yaml", check_files=False)
    assert (exp.demo.shape.vocab_size, exp.demo.data.seed) == (8, -1)


def test_the_schema_and_the_settings_refuse_the_same_values():
    """One table of bounds (madx/core/settings.py) for the config schema and the commands' dataclasses."""
    defs = config_schema()["$defs"]
    sections = [defs[name]["properties"] for name in ("lang_training", "task_training", "pretraining")]
    for name, minimum in AT_LEAST.items():
        found = [section[name]["minimum"] for section in sections if name in section]
        # script keys: per language; steps: madx_emea's (the emea section)
        assert found == [minimum] * len(found) and (found or name in (*SCRIPT_KEYS, "steps")), name
    assert all(section["lr"]["exclusiveMinimum"] == 0 for section in sections) and set(POSITIVE) == {"lr", "embedding_lr"}
    assert "steps" in defs["emea"]["properties"]  # madx_emea's: bounded by the same table (EmeaSettings)
    with pytest.raises(SettingError, match=r"seq_len=2 must be at least 3") as err:
        LangTraining(seq_len=2)
    assert err.value.keys == ("seq_len",)
    assert LangTraining(seq_len=3).seq_len == 3  # the smallest that trains (one masked token per sequence)
    with pytest.raises(SettingError, match=r"max_length=2 must be at least 3"):
        TaskTraining(max_length=2)


# ---- local paths and the base model


def test_a_missing_local_base_model_is_refused(local_tree, tmp_path, monkeypatch):
    data, base = local_tree
    monkeypatch.chdir(tmp_path)
    for missing in (str(tmp_path / "no_model"), "./no_model", "models/base/v1"):
        refused(local_config(data, base, base_model=missing),
                rf"c.yaml: base_model {re.escape(repr(missing))}: no such local directory")
    (tmp_path / "models").mkdir()  # namespace/name beside a folder of that namespace: the local path is meant
    refused(local_config(data, base, base_model="models/xlmr"), r"base_model 'models/xlmr': no such local directory")


def cached_hub_model(cache: Path, repo_id: str) -> None:
    """A model's config.json in a hub cache laid out as huggingface_hub lays it out (refs/main -> a snapshot)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    (repo / "snapshots" / ("0" * 40) / "config.json").write_text("{}")


def test_a_hub_base_model_is_cached_found_on_the_hub_or_refused(local_tree, tmp_path, monkeypatch, capsys):
    """A base_model that is no local directory is a hub id: cached, it loads with no note; not cached, the config
    check asks the hub (a typo is refused before any job), says when the first job downloads it, and refuses it
    offline (HF_HUB_OFFLINE) with how to download it."""
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import RepositoryNotFoundError

    from madx.commands import check_config

    data, base = local_tree
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    cached_hub_model(tmp_path / "hub", "FacebookAI/xlm-roberta-base")
    asked = []

    def model_info(self, repo_id, **kwargs):
        asked.append(repo_id)
        return answers[repo_id]()

    def not_found():  # the hub client's 404 (built without an HTTP response, which its constructor wants)
        err = RepositoryNotFoundError.__new__(RepositoryNotFoundError)
        Exception.__init__(err, "404 Client Error: Repository Not Found")
        raise err

    def unreachable():
        raise ConnectionError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    answers = {"org/typo": not_found, "org/far": unreachable, "org/big": lambda: None}
    exp = load_experiment(local_config(data, base, base_model="FacebookAI/xlm-roberta-base"), "c.yaml")
    assert exp.notes == () and asked == []  # cached: no question to the hub
    refused(local_config(data, base, base_model="org/typo"),
            r"c.yaml: base_model 'org/typo': no local directory 'org/typo' under .*, and the hub has no model of that "
            r"id \(or it is private: log in")
    exp = load_experiment(local_config(data, base, base_model="org/far"), "c.yaml")
    assert len(exp.notes) == 1 and "the hub cannot be reached to check it (ConnectionError): the first job " \
        "downloads it. If you meant a local directory, fix the path" in exp.notes[0]
    exp = load_experiment(local_config(data, base, base_model="org/big"), "c.yaml")
    assert exp.notes == ("base_model 'org/big': a hub id not in the hub cache yet: the first job downloads it",)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(local_config(data, base, base_model="org/big")))
    assert check_config.main(["c.yaml"]) == 0
    assert "  note: base_model 'org/big': a hub id not in the hub cache yet" in capsys.readouterr().out
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    refused(local_config(data, base, base_model="org/big"),
            r"base_model 'org/big': .*it is not in the hub cache \(HF_HUB_OFFLINE is set\); download it while "
            r"online \(hf download org/big\)")
    assert load_experiment(local_config(data, base, base_model="FacebookAI/xlm-roberta-base"), "c.yaml").notes == ()
    assert asked == ["org/typo", "org/far", "org/big", "org/big"]  # offline: never asked


def test_a_base_model_without_its_tokenizer_is_refused(local_tree, tmp_path):
    data, base = local_tree
    no_tokenizer = tmp_path / "no_tokenizer"
    shutil.copytree(base, no_tokenizer)
    (no_tokenizer / "tokenizer.json").unlink()
    refused(local_config(data, no_tokenizer),
            rf"c.yaml: base_model '{re.escape(str(no_tokenizer))}': no tokenizer files there \(none of tokenizer.json, "
            r"sentencepiece.bpe.model.*\); save the model's tokenizer beside it")
    config = json.loads((base / "config.json").read_text())
    size = config["vocab_size"]  # = the tokenizer's size
    for rows, problem in ((size - 1, rf"its tokenizer.json has {size} entries, the model's embeddings {size - 1} rows"),
                          (4 * size, rf"its tokenizer.json has {size} entries for the model's {4 * size} embedding rows")):
        wrong = tmp_path / f"rows{rows}"
        shutil.copytree(base, wrong)
        (wrong / "config.json").write_text(json.dumps({**config, "vocab_size": rows}))
        refused(local_config(data, wrong), rf"c.yaml: base_model '{re.escape(str(wrong))}': {problem}")
    assert load_experiment(local_config(data, base), "c.yaml").base_model == str(base)


def slow_tokenizer_file(directory: Path, name: str, size: int) -> None:
    """A tokenizer of `size` entries as the file `name` alone (no tokenizer.json): vocab.txt, vocab.json, or a
    sentencepiece model."""
    if name == "vocab.txt":
        (directory / name).write_text("".join(f"tok{i}\n" for i in range(size)))
    elif name == "vocab.json":
        (directory / name).write_text(json.dumps({f"tok{i}": i for i in range(size)}))
    else:
        import sentencepiece

        text = directory / "text.txt"
        text.write_text(" ".join(a + b + c for a in "abcdef" for b in "abcdef" for c in "ghij") + "\n")
        sentencepiece.SentencePieceTrainer.train(input=str(text), model_prefix=str(directory / "spm"), vocab_size=size,
                                                 model_type="unigram", minloglevel=2, num_threads=1)
        (directory / "spm.model").rename(directory / name)
        for leftover in ("spm.vocab", "text.txt"):
            (directory / leftover).unlink()


@pytest.mark.parametrize("name", ["vocab.txt", "vocab.json", "sentencepiece.bpe.model"])
def test_a_base_model_whose_slow_tokenizer_does_not_fit_is_refused(local_tree, tmp_path, capsys, name):
    """Without tokenizer.json, the size of the file transformers builds the tokenizer from is checked, by the
    config check (madx check-config): too many entries for the embedding rows, or far too few."""
    from madx.cli import main as cli

    data, _ = local_tree
    size = 30
    for rows, problem in ((size, None), (size - 1, rf"its {re.escape(name)} has {size} entries, the model's "
                                                   rf"embeddings {size - 1} rows"),
                          (4 * size, rf"its {re.escape(name)} has {size} entries for the model's {4 * size} embedding")):
        base = tmp_path / f"{name}-{rows}"
        base.mkdir()
        slow_tokenizer_file(base, name, size)
        (base / "config.json").write_text(json.dumps({"model_type": "xlm-roberta", "vocab_size": rows,
                                                      "max_position_embeddings": 50, "pad_token_id": 1}))
        path = tmp_path / f"{name}-{rows}.yaml"
        path.write_text(yaml.safe_dump(local_config(data, base)))
        code = cli(["check-config", str(path)])
        err = capsys.readouterr().err
        if problem is None:
            assert code == 0, err
        else:
            assert code == 2 and re.search(rf"base_model '{re.escape(str(base))}': {problem}", err), err


def test_a_corrupt_base_model_config_names_the_file(local_tree, tmp_path):
    from madx.data import hub as hf

    data, base = local_tree
    corrupt = tmp_path / "corrupt"
    shutil.copytree(base, corrupt)
    (corrupt / "config.json").write_text('{"model_type": "xlm-roberta", "vocab_')
    message = rf"{re.escape(str(corrupt / 'config.json'))}: cannot be read as JSON \(.*\); save the model again"
    refused(local_config(data, corrupt), rf"c.yaml: {message}")
    refused(local_config(data, corrupt), rf"c.yaml: {message}", check_files=False)  # the position limit reads it too
    with pytest.raises(hf.ModelLoadError, match=message):
        hf.check_base_model_dir(str(corrupt))
    (corrupt / "config.json").write_text("[1, 2]")
    with pytest.raises(hf.ModelLoadError, match=r"config.json: a JSON list, not the object save_pretrained writes"):
        hf.read_model_config(corrupt)


def tiny_checksummed_base(directory: Path) -> Path:
    """A tiny xlm-roberta base model with a tokenizer that fits it, and the checksum sidecar madx build-base
    writes."""
    import transformers
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    from madx.core.files import files_under, record_checksums
    from tiny import TINY, tiny_model

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    vocab = {t: i for i, t in enumerate([*specials, *(f"w{i}" for i in range(TINY["vocab_size"] - 5)), "<mask>"])}
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", pad_token="<pad>",
                                                     eos_token="</s>", unk_token="<unk>", mask_token="<mask>",
                                                     cls_token="<s>", sep_token="</s>")
    tiny_model("xlm-roberta").save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    record_checksums(directory, files_under(directory))
    return directory


def test_a_base_model_changed_since_madx_built_it_is_refused_at_load(tmp_path):
    """Bytes flipped inside the demo base's weights (same size) are an error naming the file, at every load; a
    directory without the sidecar (any Hugging Face model) and a hand-edited config.json load as before."""
    from madx.data import hub as hf
    from madx.core.files import CHECKSUMS

    base = tiny_checksummed_base(tmp_path / "base")
    config = json.loads((base / "config.json").read_text())
    (base / "config.json").write_text(json.dumps({**config, "hidden_dropout_prob": 0.2}))  # a hand edit: allowed
    assert len(hf.load_tokenizer(str(base))) == config["vocab_size"]
    clean = {k: v.clone() for k, v in hf.load_mlm_model(str(base)).state_dict().items()}  # not views of the file
    weights = base / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-64:-32] = bytes(b ^ 0xFF for b in data[-64:-32])  # inside the last tensor, after the header
    weights.write_bytes(bytes(data))
    message = rf"{re.escape(str(weights))}: its bytes differ from the sha256 madx recorded .*rebuild the base model"
    for load in (lambda: hf.load_tokenizer(str(base)), lambda: hf.load_mlm_model(str(base)),
                 lambda: hf.load_task_model(str(base), "AutoModelForTokenClassification", ["O", "B-PER"])):
        with pytest.raises(hf.ModelLoadError, match=message):
            load()
    (base / CHECKSUMS).unlink()  # without the sidecar: loads unchecked, as any Hugging Face model does
    changed = hf.load_mlm_model(str(base)).state_dict()
    assert any(not (changed[k] == clean[k]).all() for k in clean)  # the flipped bytes really changed a weight


def test_every_local_path_a_job_reads_is_checked(local_tree, tmp_path):
    data, base = local_tree
    config = local_config(data, base)
    config["languages"]["qac"] = {"adapter": str(tmp_path / "no_adapter")}
    refused(config, rf"c.yaml: languages.qac.adapter: adapter directory '{re.escape(str(tmp_path))}/no_adapter' "
                    "not found")
    config = local_config(data, base)
    config["tasks"]["ner"]["test"] = {"hub": str(tmp_path / "no_dataset"), "split": "test"}
    refused(config, r"c.yaml: tasks.ner.test \(en\): local dataset directory '.*no_dataset' not found")
    config["tasks"]["ner"]["test"] = {"hub": "unimelb-nlp/wikiann", "config": "{lang}", "split": "test"}
    load_experiment(config, "c.yaml")  # a hub dataset: read by the job


# ---- the workflow: adapters are products, adapter-only languages, the source's adapter first


def test_every_adapter_is_a_product_and_a_corpus_only_language_gets_its_adapter(local_tree, tmp_path, capsys):
    from madx.cli import main as cli

    data, base = local_tree
    config = local_config(data, base)
    config["languages"]["sw"] = {"corpus": str(data / "corpora/qab.txt")}
    config["tasks"]["ner"]["languages"] = ["en", "qac"]
    exp = load_experiment(config, "c.yaml")
    assert exp.adapter_only_languages() == ["sw"]
    assert exp.lang_adapter_outputs() == [f"results/adapters/lang/{lang}" for lang in ("en", "qac", "sw")]
    assert exp.task_outputs() == ["results/tasks/ner/en/madx/seed1", "results/tasks/ner/en/task_only/seed1"]
    path = tmp_path / "sw.yaml"
    path.write_text(yaml.safe_dump(config))
    assert cli(["check-config", str(path)]) == 0
    assert "sw: language adapter only (no task has test data for it)" in capsys.readouterr().out
    demo_exp = load_experiment(demo(), "c.yaml", check_files=False)
    # per seed: ner's madx, task_only, full_ft and madx_tlr; the other three tasks' madx and task_only; name_kind's
    # fusion
    assert len(demo_exp.task_outputs()) == (4 + 3 * 2 + 1) * 2
    # every language with a corpus (qae has none), qad's new-script adapter
    assert len(demo_exp.lang_adapter_outputs()) == 4 + 1


def snakemake(args, cwd):
    return subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(cwd), *args], cwd=cwd,
                          capture_output=True, text=True, env=dict(os.environ, MADX_NO_PROGRESS="1"))


def job_counts(output: str) -> dict:
    if "Job stats:" not in output:
        return {}
    table = output.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


def finish(paths: list[Path], stamp: float) -> None:
    """Outputs that look finished, in order: each newer than the one before (and than the inputs, from `stamp` on)."""
    for path in paths:
        if not path.suffix:  # a directory output: something inside
            path.mkdir(parents=True, exist_ok=True)
            (path / "done").write_text("x")
            os.utime(path / "done", (stamp, stamp))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")
        os.utime(path, (stamp, stamp))
        stamp += 10


def test_a_lost_adapter_is_rebuilt_and_the_source_adapter_goes_first(local_tree, tmp_path):
    """On a finished-looking run, `snakemake -n` has nothing to do; with a task or language adapter deleted, it
    trains it again (and redoes what reads it), though the evaluations made from it are still there."""
    data, base = local_tree
    config = local_config(data, base)
    config["languages"]["sw"] = {"corpus": str(data / "corpora/qab.txt")}
    config["tasks"]["ner"]["languages"] = ["en", "qac"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    exp = load_experiment(config, "c.yaml")
    out = [tmp_path / p for p in (*exp.lang_adapter_outputs(), *exp.task_outputs(), *exp.eval_outputs(),
                                  *exp.paths.report_outputs().values())]
    start = time.time() + 100  # after the inputs (the tiny benchmark was just made)
    finish(out, start)
    proc = snakemake(["-n", "--configfile", "c.yaml"], tmp_path)
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout + proc.stderr

    shutil.rmtree(tmp_path / "results/tasks/ner/en/task_only/seed1")
    proc = snakemake(["-n", "--configfile", "c.yaml"], tmp_path)
    assert job_counts(proc.stdout) == {"train_task": 1, "evaluate": 2, "report": 1, "all": 1}, proc.stdout[-3000:]
    finish([tmp_path / "results/tasks/ner/en/task_only/seed1"], start + 10 * out.index(
        tmp_path / "results/tasks/ner/en/task_only/seed1"))

    for lang in ("en", "sw"):  # the source's adapter, and that of the language no task evaluates
        shutil.rmtree(tmp_path / f"results/adapters/lang/{lang}")
    proc = snakemake(["-n", "--configfile", "c.yaml"], tmp_path)
    counts = job_counts(proc.stdout)
    assert counts["train_lang_adapter"] == 2 and counts["report"] == 1, proc.stdout[-3000:]
    jobs = {m.group(1): m.group(2) for m in re.finditer(r"wildcards: lang=(\w+)\n(?:    priority: (\d+))?",
                                                        proc.stdout)}
    assert jobs == {"en": "10", "sw": None}  # every task training waits on the source's adapter: it goes first
    report = re.search(r"Shell command: madx report .*", snakemake(["-n", "-p", "--configfile", "c.yaml"],
                                                                   tmp_path).stdout).group(0)
    assert "results/adapters/lang/sw" in report  # its held-out perplexity is reported


def test_the_workflow_refuses_duplicate_keys_and_a_second_config_file(tmp_path):
    config = yaml.safe_dump(demo(), sort_keys=False)
    (tmp_path / "dup.yaml").write_text(config + "seeds: [7]\n")
    line = config.splitlines().index("seeds:") + 1
    proc = snakemake(["-n", "--configfile", "dup.yaml"], tmp_path)
    assert proc.returncode != 0
    assert f"invalid config: dup.yaml:{config.count(chr(10)) + 1}: seeds: duplicate key (first at line {line})" in (
        proc.stdout + proc.stderr), proc.stderr[-2000:]
    # `--configfile X TARGET`: Snakemake reads TARGET as a second config file (when it exists; else it fails itself)
    (tmp_path / "c.yaml").write_text(config)
    (tmp_path / "target.json").write_text("{}")
    proc = snakemake(["-n", "--configfile", "c.yaml", "target.json"], tmp_path)
    assert proc.returncode != 0
    assert ("invalid config: 2 config files given (c.yaml, target.json): a madx experiment is one config file, and "
            "--configfile takes every word after it; put targets before --configfile") in proc.stdout + proc.stderr


def test_a_damaged_or_foreign_finished_output_is_refused_before_any_job(local_tree, tmp_path, monkeypatch, capsys):
    """Before the DAG, the workflow checks the finished adapters under the results folder: bytes changed since madx
    wrote them (same size: only the checksum sees it), or an output trained on another base model (a config that
    shares another experiment's results folder), stop the run with the file named, and nothing is deleted."""
    from madx.commands import check_config
    from madx.core.files import record_checksums

    data, base = local_tree
    config = local_config(data, base)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    exp = load_experiment(config, "c.yaml")
    out = [tmp_path / p for p in (*exp.lang_adapter_outputs(), *exp.task_outputs(), *exp.eval_outputs(),
                                  *exp.paths.report_outputs().values())]
    task = tmp_path / "results/tasks/ner/en/madx/seed1"
    weights = task / "adapter.safetensors"
    task.mkdir(parents=True)
    weights.write_bytes(bytes(range(256)) * 4)
    (task / "task.json").write_text(json.dumps({"base_model": str(base), "setup": "madx"}))
    record_checksums(task, [weights])
    finish(out, time.time() + 100)
    proc = snakemake(["-n", "--configfile", "c.yaml"], tmp_path)
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert (tmp_path / "results/.madx_digests.json").is_file()  # the next check reads only what changed

    before = {p: p.read_bytes() for p in (tmp_path / "results").rglob("*") if p.is_file() and p.name[0] != "."}
    damaged = bytearray(weights.read_bytes())
    damaged[100:104] = b"\xff\xff\xff\x7f"
    weights.write_bytes(bytes(damaged))
    proc = snakemake(["--cores", "1", "--configfile", "c.yaml", "--forcerun", "evaluate"], tmp_path)
    assert proc.returncode != 0
    assert (f"cannot run on the finished outputs: c.yaml: a finished output is damaged: {weights.relative_to(tmp_path)}: its "
            "bytes differ from the sha256 madx recorded when it wrote it") in proc.stderr, proc.stderr[-2000:]
    assert f"delete {task.relative_to(tmp_path)} and run snakemake again to rebuild it" in proc.stderr
    assert {p: p.read_bytes() for p in before} == {**before, weights: bytes(damaged)}  # nothing deleted or redone
    monkeypatch.chdir(tmp_path)
    assert check_config.main(["c.yaml"]) != 0 and "a finished output is damaged" in capsys.readouterr().err

    weights.write_bytes(before[weights])
    other = tmp_path / "other_base"
    shutil.copytree(base, other)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(local_config(data, other)))
    proc = snakemake(["-n", "--configfile", "c.yaml"], tmp_path)
    assert proc.returncode != 0
    assert (f"c.yaml: base_model '{other}': results/tasks/ner/en/madx/seed1 was trained on base model '{base}', so "
            "the results folder 'results' holds another experiment's outputs; give this config a folder of its own "
            "(results: results/<name>), or delete results/tasks/ner/en/madx/seed1 to retrain it") in proc.stdout + \
        proc.stderr, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert load_experiment(local_config(data, other, results="results/other"), "c.yaml").paths.results == \
        "results/other"


# ---- languages without a corpus: related languages' adapters stand in


def test_a_language_without_a_corpus_runs_on_its_related_languages_adapters(local_tree):
    data, base = local_tree
    config = local_config(data, base)
    config["languages"]["qab"] = {"related": ["qac", "en"], "k": 2}
    exp = load_experiment(config, "c.yaml")
    assert exp.setups_for("ner", "qab") == ["task_only", "madx_nearest", "madx_avg", "madx_emea"]  # no madx: no adapter
    assert exp.setups_for("ner", "qac") == ["madx", "task_only"]
    assert exp.eval_lang_adapters("madx_avg", "en", "qab") == ["results/adapters/lang/qac", "results/adapters/lang/en"]
    assert exp.eval_lang_adapters("madx_nearest", "en", "qab") == ["results/adapters/lang/qac"]
    assert exp.lang_adapters_to_train() == ["en", "qac"]  # none for qab
    config["languages"]["qab"] = {"related": ["qac", "en"]}  # k: 3 by default, or all when fewer
    assert load_experiment(config, "c.yaml").languages["qab"].averaged == ("qac", "en")
    # a language with its own corpus runs them beside madx, so the two can be compared
    config["languages"]["qab"] = {"corpus": str(data / "corpora/qab.txt"), "related": ["qac"]}
    assert load_experiment(config, "c.yaml").setups_for("ner", "qab") == ["madx", "task_only", "madx_nearest",
                                                                          "madx_avg", "madx_emea"]


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["languages"].update(qab={"related": ["xx"]}),
     r"languages.qab.related: 'xx' is not a language here \(en, qac, qab\); add it with a corpus"),
    (lambda c: c["languages"].update(qab={"related": ["qab"]}), r"languages.qab.related: 'qab' is the language itself"),
    (lambda c: c["languages"].update(qab={"related": ["qac"]}, sw={"related": ["qab"]}),
     r"languages.sw.related: 'qab' has no language adapter \(no corpus, no ready adapter\); give languages.qab a "
     r"corpus"),
    (lambda c: c["languages"].update(qab={"related": ["qac", "en"], "k": 3}),
     r"languages.qab.k: 3, but related names 2 language\(s\)"),
    (lambda c: c["languages"]["qac"].update(setups=["madx_avg"]),
     r"languages.qac.setups: madx_avg stacks the adapters of related languages: give languages.qac.related"),
    (lambda c: c["languages"].update(en={"related": ["qac"]}),
     r"languages.en: a source language with no corpus and no ready adapter; the task adapters are trained on the "
     r"source's language adapter"),
    (lambda c: c["languages"].update(qab={"related": ["qac"], "setups": ["madx_translit"], "romanize": "anyascii"}),
     r"languages.qab.setups: madx_translit trains qab's own language adapter from its corpus, and qab has none"),
    (lambda c: c["languages"].update(qab={}), r"languages.qab: needs a corpus .*, or related: the languages whose "
                                              r"adapters stand in for its own"),
    (lambda c: c.update(emea={"steps": 0}), r"emea.steps: 0 must be at least 1"),
    (lambda c: c["tasks"]["ner"].update(tlr_languages=["xx"]), r"tasks.ner.tlr_languages: 'xx' is not under languages"),
    (lambda c: (c["languages"].update(qab={"related": ["qac"]}), c["tasks"]["ner"].update(tlr_languages=["qab"])),
     r"tasks.ner.tlr_languages: 'qab' is a language with no adapter \(no corpus\)"),
    (lambda c: (c.update(setups=["madx", "madx_tlr"]), c["tasks"]["ner"].update(languages=["en"])),
     r"tasks.ner: madx_tlr trains over the targets' language adapters in turn with the source's, and no target of "
     r"ner but en has one; give tasks.ner.tlr_languages"),
    (lambda c: c.update(setups=["madx", "madx_avg"]), r"setups: madx_nearest, madx_avg, madx_emea run for the "
                                                      r"languages that name related ones"),
    (lambda c: c.update(emea={"lr": -1.0}), r"emea.lr: -1.0 must be positive"),
])
def test_related_languages_are_checked(local_tree, edit, message):
    data, base = local_tree
    config = local_config(data, base)
    edit(config)
    refused(config, "c.yaml: " + message)


def test_related_uriel_chooses_the_nearest_languages_with_adapters(local_tree, tmp_path, capsys, monkeypatch):
    """`related: uriel`: the k nearest languages by URIEL distance among those with adapters, on real codes whose
    answer a linguist knows: Marathi's nearest is Hindi, Portuguese's Spanish; a code URIEL does not know, or fewer
    candidates than k, is an error naming the key."""
    from madx.commands import check_config
    from madx.data import uriel

    data, base = local_tree
    corpus = str(data / "corpora/en.txt")
    config = local_config(data, base)
    config["languages"] = {code: {"corpus": corpus} for code in ("en", "hi", "de", "ja", "es")}
    config["languages"]["mr"] = {"related": "uriel", "k": 2}
    config["languages"]["pt"] = {"related": "uriel", "k": 1}
    config["tasks"]["ner"]["languages"] = ["en", "mr", "pt"]
    exp = load_experiment(config, "c.yaml", check_files=False)
    assert exp.languages["mr"].related[0] == "hi" and exp.languages["pt"].related == ("es",)
    assert len(exp.languages["mr"].related) == 2 and "mr" not in exp.languages["mr"].related
    distances = exp.languages["mr"].distances
    assert distances[0] < distances[1] and distances[0] == round(uriel.distance("mr", "hi"), 4)
    assert uriel.distance("mr", "mr") == pytest.approx(0, abs=1e-6) and uriel.uriel_code("mar") == "mar"
    assert exp.eval_lang_adapters("madx_avg", "en", "mr") == [f"results/adapters/lang/{c}"
                                                               for c in exp.languages["mr"].related]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    assert check_config.main(["c.yaml", "--no-file-check"]) == 0
    assert f"mr: no adapter of its own (no corpus): no madx; related languages hi ({distances[0]:.3f})" in \
        capsys.readouterr().out
    for lang in ("mr", "pt"):  # their test sets, for the workflow's file check
        shutil.copy(data / "ner/en.test.conll", data / f"ner/{lang}.test.conll")
    shell = snakemake(["-n", "-p", "results/eval/ner/en/mr/results.json", "--configfile", "c.yaml"], tmp_path).stdout
    related = " ".join(f"{code}={d:.4f}" for code, d in zip(exp.languages["mr"].related, distances))
    assert f"--related {related} " in shell, shell[-3000:]  # the evaluation's log and results say how near
    config["languages"]["qaz"] = {"related": "uriel"}
    refused(config, r"c.yaml: languages.qaz.related: uriel: URIEL does not know the language 'qaz'", check_files=False)
    del config["languages"]["qaz"]
    config["languages"]["mr"]["k"] = 6
    refused(config, r"languages.mr.related: uriel: 5 of the languages with adapters \(en, hi, de, ja, es\) URIEL knows, "
                    r"6 asked for \(languages.mr.k\)", check_files=False)


def test_a_ready_language_adapter_by_hub_id_is_resolved_before_the_dag(local_tree, tmp_path, monkeypatch):
    """languages.<l>.adapter: a hub id (or {id, revision}) is resolved by the config check from the hub cache; an id
    the cache lacks, offline, is an error naming the key and how to download it; the jobs read the id (no file
    for Snakemake to wait for)."""
    from hubcache import offline_cache, publish

    data, base = local_tree
    offline_cache(monkeypatch, tmp_path / "hub")
    import madx
    from tiny import tiny_model

    model, adapter = tiny_model(), tmp_path / "sw_adapter"
    madx.add_adapter(model, "sw", madx.LANGUAGE_ADAPTER)
    madx.save_adapter(model, "sw", adapter)
    publish(tmp_path / "hub", "AdapterHub/xlm-roberta-base-sw-wiki_pfeiffer", adapter, "d" * 40, refs=("main",))
    config = local_config(data, base)
    config["languages"]["qac"] = {"adapter": "AdapterHub/xlm-roberta-base-sw-wiki_pfeiffer"}
    exp = load_experiment(config, "c.yaml")
    assert exp.lang_adapter_dir("qac") == "AdapterHub/xlm-roberta-base-sw-wiki_pfeiffer"
    assert exp.lang_adapters_to_train() == ["en"]
    config["languages"]["qac"] = {"adapter": {"id": "AdapterHub/xlm-roberta-base-sw-wiki_pfeiffer", "revision": "d" * 40}}
    assert load_experiment(config, "c.yaml").lang_adapter_dir("qac").endswith("@" + "d" * 40)
    config["languages"]["qac"] = {"adapter": "AdapterHub/xlm-roberta-base-qu-wiki_pfeiffer"}
    refused(config, r"c.yaml: languages.qac.adapter: adapter AdapterHub/xlm-roberta-base-qu-wiki_pfeiffer: not in the "
                    r"hub cache, and the hub cannot be reached \(HF_HUB_OFFLINE set, or no network\); download it "
                    r"where there is network \(hf download AdapterHub/xlm-roberta-base-qu-wiki_pfeiffer\)")



def test_an_adapter_id_the_hub_cannot_be_asked_about_is_a_note_unless_offline(local_tree, tmp_path, monkeypatch):
    """Not cached and the hub out of reach, with HF_HUB_OFFLINE unset: the dry run goes on with a note (its jobs
    fetch the adapter); with HF_HUB_OFFLINE set the same id is refused."""
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    def unreachable(*args, **kwargs):
        raise LocalEntryNotFoundError("Name or service not known")

    data, base = local_tree
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    config = local_config(data, base)
    config["languages"]["qac"] = {"adapter": "AdapterHub/xlm-roberta-base-sw-wiki_pfeiffer"}
    exp = load_experiment(config, "c.yaml")
    assert exp.notes == ("languages.qac.adapter: adapter AdapterHub/xlm-roberta-base-sw-wiki_pfeiffer: not in the hub "
                         "cache, and the hub cannot be reached (HF_HUB_OFFLINE set, or no network); download it where "
                         "there is network (hf download AdapterHub/xlm-roberta-base-sw-wiki_pfeiffer), or give a local "
                         "directory; its jobs fetch it (set HF_HUB_OFFLINE=1 to have this refused instead)",)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    refused(config, r"languages.qac.adapter: adapter AdapterHub/xlm-roberta-base-sw-wiki_pfeiffer: not in the hub cache")


def test_uriel_finds_lang2vec_by_its_distribution_and_says_how_to_install_it(monkeypatch):
    """Under Snakemake the venv's bin/ (with lang2vec's bin/lang2vec.py script) is first on sys.path: the data
    folder comes from the installed distribution, and a missing one is an install hint, not a traceback."""
    import importlib.metadata

    from madx.data import uriel

    assert (uriel.data_dir() / "letter_codes.json").exists()

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(uriel.UrielError, match=r"pip install 'madx\[uriel\]'"):
        uriel.data_dir()


def test_ready_task_adapters_evaluate_without_training(local_tree, tmp_path, monkeypatch, capsys):
    """tasks.<t>.adapter: {<source>: <id or directory>}: madx and source_la evaluate it (once: under the first
    seed) and nothing trains it, so the task needs no train or dev data; what would still train is refused, naming
    the key, before the DAG."""
    from hubcache import offline_cache, publish

    import madx
    from tiny import tiny_model

    data, base = local_tree
    offline_cache(monkeypatch, tmp_path / "hub")
    model, adapter = tiny_model(), tmp_path / "ner_adapter"
    madx.add_adapter(model, "ner", madx.TASK_ADAPTER)
    madx.save_adapter(model, "ner", adapter)
    (adapter / "head_config.json").write_text(json.dumps({"head_type": "tagging", "num_labels": 3}))
    publish(tmp_path / "hub", "someone/xlmr-ner", adapter, "c" * 40)
    config = local_config(data, base, seeds=[1, 2], setups=["madx", "source_la"])
    del config["tasks"]["ner"]["train"], config["tasks"]["ner"]["dev"]
    config["tasks"]["ner"]["adapter"] = {"en": "someone/xlmr-ner"}
    exp = load_experiment(config, "c.yaml")
    assert exp.task_outputs() == [] and exp.lang_adapters_to_train() == ["en", "qac"]
    assert exp.eval_runs("ner", "en", "qac") == [("madx", 1), ("source_la", 1)]
    assert exp.task_dir("ner", "en", "madx", 1) == "someone/xlmr-ner"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    from madx.commands import check_config

    assert check_config.main(["c.yaml"]) == 0
    assert ("ner: a ready task adapter from en, someone/xlmr-ner: evaluated once (seed 1) under the setups that read "
            "madx's, none trained") in capsys.readouterr().out
    proc = snakemake(["-n", "-p", "--configfile", "c.yaml"], tmp_path)
    assert job_counts(proc.stdout) == {"train_lang_adapter": 2, "evaluate": 2, "report": 1, "all": 1}, proc.stdout
    assert "--run madx 1 someone/xlmr-ner results/adapters/lang/qac" in proc.stdout

    config["tasks"]["ner"]["adapter"] = {"en": str(adapter)}  # a directory works the same
    assert load_experiment(config, "c.yaml").task_dir("ner", "en", "source_la", 1) == str(adapter)
    refused({**config, "setups": ["madx", "task_only"]}, r"c.yaml: tasks.ner.train: missing, and task_only \(from en\) "
            r"train a task adapter on it; a ready adapter stands in for madx's only")
    config["tasks"]["ner"]["adapter"] = {"qac": str(adapter)}
    refused(config, r"tasks.ner.adapter.qac: not a source language of the experiment \(en\)")
    config["tasks"]["ner"]["adapter"] = {"en": str(tmp_path / "nowhere")}
    refused(config, r"tasks.ner.adapter.en: adapter directory .*nowhere' not found; .* or give the task train and dev")
    (adapter / "head_config.json").unlink()
    config["tasks"]["ner"]["adapter"] = {"en": str(adapter)}
    refused(config, r"tasks.ner.adapter.en: .* has no prediction head \(head_config.json\)")
    config["tasks"]["ner"]["train"] = str(data / "ner/{lang}.train.conll")
    refused(config, r"tasks.ner: train without dev; a task adapter trains on train and picks its checkpoint on dev")
    del config["tasks"]["ner"]["train"], config["tasks"]["ner"]["adapter"]
    refused(config, r"tasks.ner: no train and dev data and no ready adapter; give train and dev")
