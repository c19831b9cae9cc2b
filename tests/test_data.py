"""Readers for corpora and labelled data: local files, hub datasets (a local dataset directory), the cache."""

import gzip
import json

import datasets
import numpy as np
import pytest
import torch
import transformers

from madx.core.sources import DataError, Source
from madx.core.tensors import without_full_mask
from madx.data.corpus import build_blocks, load_blocks, read_lines
from madx.tasks.tagging import (TokenClassificationObjective, check_labels, encode, label_names_of, pad_batch,
                                read_labelled)
from madx.training.task import TokenBatches
from tiny import tiny_model


@pytest.fixture(scope="module")
def tokenizer(tiny_base):
    return transformers.AutoTokenizer.from_pretrained(tiny_base[1])


def test_corpus_formats(tmp_path):
    (tmp_path / "a.txt").write_text("one two\n\n  \nthree\n")
    with gzip.open(tmp_path / "b.txt.gz", "wt") as f:
        f.write("four\n\nfive six\n")
    (tmp_path / "c.jsonl").write_text(json.dumps({"text": "seven"}) + "\n\n" + json.dumps({"text": "eight"}) + "\n")
    (tmp_path / "d.txt").write_bytes(b"good line\nbad \xff\xfe line\nlast\n")
    assert list(read_lines(Source.parse(tmp_path / "a.txt"))) == ["one two", "three"]
    assert list(read_lines(Source.parse(tmp_path / "b.txt.gz"))) == ["four", "five six"]
    assert list(read_lines(Source.parse(tmp_path / "c.jsonl"))) == ["seven", "eight"]
    assert list(read_lines(Source.parse(tmp_path / "d.txt"))) == ["good line", "last"]  # invalid UTF-8 skipped


def test_hub_corpus_from_a_dataset_directory(tmp_path):
    datasets.Dataset.from_dict({"content": ["alpha beta", "", "gamma"]}).to_parquet(str(tmp_path / "train.parquet"))
    source = Source.parse(f"hub:{tmp_path}?split=train&column=content")
    assert source.hub_id == str(tmp_path) and source.column == "content"
    assert list(read_lines(source)) == ["alpha beta", "gamma"]
    with pytest.raises(DataError, match="no column 'text'"):
        list(read_lines(Source.parse(f"hub:{tmp_path}?split=train")))
    with pytest.raises(DataError, match="unknown options"):
        Source.parse("hub:x/y?colum=text")


def test_blocks_and_cache(tokenizer, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(["Anna Novak visited the old farmer today"] * 200))
    sources = [Source.parse(corpus)]
    blocks = build_blocks(tokenizer, sources, 16, max_tokens=500)
    assert blocks.shape == (500 // 14, 16)
    assert (blocks[:, 0] == tokenizer.cls_token_id).all() and (blocks[:, -1] == tokenizer.sep_token_id).all()
    first = load_blocks(tokenizer, sources, 16, tmp_path / "cache", max_tokens=500)
    second = load_blocks(tokenizer, sources, 16, tmp_path / "cache", max_tokens=500)
    assert np.array_equal(first, blocks) and np.array_equal(second, blocks)
    assert len(list((tmp_path / "cache").glob("blocks-*"))) == 1  # one cache entry, reused
    load_blocks(tokenizer, sources, 32, tmp_path / "cache")  # another sequence length: another key
    assert len(list((tmp_path / "cache").glob("blocks-*"))) == 2
    assert np.array_equal(build_blocks(tokenizer, sources, 16, max_tokens=500, num_proc=2), blocks)  # 2 processes


def test_conll_and_jsonl(tmp_path):
    conll = tmp_path / "x.conll"
    conll.write_text("-DOCSTART- O\n\nAnna\tB-PER\nNovak\tI-PER\nsang\tO\n\nin\tO\nOrsk\tB-LOC\n")
    sentences, names = read_labelled(conll)
    assert names is None and [s.tokens for s in sentences] == [["Anna", "Novak", "sang"], ["in", "Orsk"]]
    assert sentences[1].where == f"{conll}:7"
    assert label_names_of(sentences) == ["O", "B-LOC", "B-PER", "I-PER"]
    jsonl = tmp_path / "x.jsonl"
    jsonl.write_text(json.dumps({"tokens": ["Anna", "sang"], "ner_tags": ["B-PER", "O"]}) + "\n")
    assert read_labelled(jsonl)[0][0].tags == ["B-PER", "O"]


def test_hub_labelled_with_classlabel_names(tmp_path):
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "I-PER"]))})
    datasets.Dataset.from_dict({"tokens": [["Anna", "Novak", "sang"]], "ner_tags": [[1, 2, 0]]},
                               features=features).to_parquet(str(tmp_path / "test.parquet"))
    sentences, names = read_labelled(f"hub:{tmp_path}?split=test")
    assert names == ["O", "B-PER", "I-PER"] and sentences[0].tags == ["B-PER", "I-PER", "O"]


@pytest.mark.parametrize("text,match", [
    ("Anna\tB-PER\tx\nNovak\tI-PER\n", r"x.conll:2: 2 column\(s\), expected 3"),
    ("Anna\n", r"x.conll:1: 1 column\(s\), expected 2"),
])
def test_conll_errors(tmp_path, text, match):
    (tmp_path / "x.conll").write_text(text)
    with pytest.raises(DataError, match=match):
        read_labelled(tmp_path / "x.conll")


def test_label_outside_source_set_names_file_and_line(tmp_path):
    (tmp_path / "t.conll").write_text("a\tO\n\nb\tO\nc\tB-MISC\n")
    sentences, _ = read_labelled(tmp_path / "t.conll")
    with pytest.raises(DataError, match=r"t.conll:3: label 'B-MISC' \(token 'c'\)"):
        check_labels(sentences, ["O", "B-PER"])


def test_first_subtoken_labels(tokenizer):
    from madx.core.tensors import IGNORE
    from madx.tasks.tagging import Sentence

    sentence = Sentence(["Yuri", "Holm", "sang"], ["B-PER", "I-PER", "O"], "x:1")
    names = ["O", "B-PER", "I-PER"]
    example = encode(tokenizer, [sentence], names, 32)[0]
    pieces = [tokenizer.convert_ids_to_tokens(i) for i in example["input_ids"]]
    words = [len(tokenizer.tokenize(w)) for w in sentence.tokens]
    expected = [IGNORE]
    for n, tag in zip(words, sentence.tags):
        expected += [names.index(tag)] + [IGNORE] * (n - 1)
    assert example["labels"] == expected + [IGNORE], pieces
    all_sub = encode(tokenizer, [sentence], names, 32, label_all_subtokens=True)[0]
    assert sum(label != IGNORE for label in all_sub["labels"]) == sum(words)


def _sentences(n, seed):
    rng = np.random.default_rng(seed)
    return [{"input_ids": [0] * int(k), "labels": [0] * int(k)} for k in rng.integers(3, 61, size=n)]


def test_length_grouped_task_batches_hold_the_same_examples_with_less_padding():
    examples = _sentences(1000, seed=0)
    grouped, plain = TokenBatches(examples, 16, seed=3, pad_id=1), TokenBatches(examples, 16, 3, 1, group_by_length=False)
    steps = range(0, 150)  # three windows of 50 steps, across an epoch boundary (1000 / 16 = 62.5 steps)
    for w in range(3):
        window = range(50 * w, 50 * (w + 1))
        # the same examples, drawn by the same seeded shuffle; only which batch each one lands in differs
        assert sorted(i for s in window for i in grouped.step_indices(s)) == sorted(
            i for s in window for i in plain.step_indices(s))
    padded = {name: sum(b(s)[0]["input_ids"].numel() for s in steps) for name, b in
              (("grouped", grouped), ("plain", plain))}
    real = sum(len(examples[i]["input_ids"]) for s in steps for i in plain.step_indices(s))
    assert padded["grouped"] < 1.1 * real < padded["plain"], (padded, real)
    # a pure function of the step: a fresh instance, steps in another order (a resumed run), same batches
    again = TokenBatches(examples, 16, seed=3, pad_id=1)
    for s in reversed(steps):
        assert again.step_indices(s) == grouped.step_indices(s)


def test_a_batch_without_padding_runs_without_a_mask():
    """An all-ones mask is dropped on the host: the same loss, and under torch.compile SDPA gets no mask
    (Hugging Face builds a full (B, 1, T, T) mask from any mask it is given while tracing)."""
    rng = np.random.default_rng(0)
    examples = [{"input_ids": rng.integers(5, 120, size=10).tolist(), "labels": rng.integers(0, 5, size=10).tolist()}
                for _ in range(4)]
    full = pad_batch(examples, pad_id=1)
    bare = without_full_mask(full)
    assert set(bare) == {"input_ids", "labels"} and bare["input_ids"] is full["input_ids"]
    padded = pad_batch(examples + [{"input_ids": [5, 6], "labels": [0, 1]}], pad_id=1)
    assert without_full_mask(padded) is padded
    objective = TokenClassificationObjective(tiny_model("xlm-roberta", head="token"))
    torch.testing.assert_close(objective(**bare), objective(**full))
    masks = []

    def backend(graph_module, example_inputs):
        masks.extend(node.kwargs.get("attn_mask", node.args[3] if len(node.args) > 3 else None)
                     for node in graph_module.graph.nodes if "scaled_dot_product" in str(node.target))
        return graph_module.forward

    torch.compile(objective, backend=backend)(**bare)
    assert masks and all(mask is None for mask in masks)


def test_compiling_under_an_old_transformers_warns(monkeypatch, caplog):
    """transformers < 5.24 materialises the attention mask under torch.compile: say so, don't fail."""
    import logging
    import sys

    from madx.training.accelerator import compiled

    module = torch.nn.Linear(2, 2)
    with caplog.at_level(logging.WARNING, logger="madx.training.accelerator"):
        compiled(module, "default")
        assert not caplog.records
        monkeypatch.setattr(sys.modules["transformers"], "__version__", "5.17.0")  # the module compiled() imports
        compiled(module, "default")
    assert "transformers 5.17.0 builds a full attention mask" in caplog.text and ">=5.24" in caplog.text


def test_a_demo_variety_keeps_its_share_of_its_parents_words_and_has_its_own_for_the_rest(tmp_path):
    """demo.languages.<l>.variety_of: a variety's lexicon keeps `shared` of its parent's words (drawn per word), its
    other words are its own (never one of the parent's), its order and script are its own; the spec the workflow
    passes to `madx demo-data` reads back as the same language, and bad varieties are named."""
    from madx.commands.demo_data import parse_language
    from madx.demo.data import DemoLanguage
    from madx.demo.grammar import Generator
    from madx.experiment import ConfigError, load_experiment

    qac = Generator(DemoLanguage("qac"), 0).lexicon
    qae = Generator(DemoLanguage("qae", variety_of="qac", shared=0.7), 0).lexicon
    kept = [w for w in qac if qae[w] == qac[w]]
    assert set(qae) == set(qac) and 0.6 < len(kept) / len(qac) < 0.8
    assert not {qae[w] for w in qac if w not in kept} & set(qac.values())
    assert len(set(qae.values())) == len(qae)  # still a bijection
    assert Generator(DemoLanguage("qae", variety_of="qac", shared=1.0), 0).lexicon == qac
    of_en = Generator(DemoLanguage("qaz", variety_of="en", shared=0.5), 0).lexicon
    assert 0.3 < sum(of_en[w] == w for w in of_en) / len(of_en) < 0.7
    language = DemoLanguage("qae", "SOV", "cyrillic", variety_of="qac", shared=0.7)
    assert parse_language("qae:SOV:cyrillic:of=qac@0.7") == language
    with pytest.raises(ValueError, match=r"shared=0 must be in \(0, 1\]"):
        DemoLanguage("qae", variety_of="qac", shared=0)

    def demo_config(**qae):
        return {"base_model": "results/demo/base_model", "source_language": "en", "demo": {"languages": {
            "en": {"seen": True}, "qac": {}, "qae": qae}}, "tasks": {"ner": {
                "type": "ner", "train": "results/demo/data/ner/{lang}.train.conll",
                "dev": "results/demo/data/ner/{lang}.dev.conll", "test": "results/demo/data/ner/{lang}.test.conll"}},
            "train_lang": {"seq_len": 32}, "train_task": {"max_length": 32}}

    exp = load_experiment(demo_config(variety_of="qac", shared=0.7), "c.yaml")
    assert exp.demo.language_spec("qae") == "qae:SVO:latin:of=qac@0.7"
    with pytest.raises(ConfigError, match=r"demo.languages.qae.variety_of: 'qxx' is not a demo language"):
        load_experiment(demo_config(variety_of="qxx"), "c.yaml")
    config = demo_config(variety_of="qac")
    config["demo"]["languages"]["qaf"] = {"variety_of": "qae"}
    with pytest.raises(ConfigError, match=r"demo.languages.qaf.variety_of: 'qae' is a variety itself"):
        load_experiment(config, "c.yaml")
