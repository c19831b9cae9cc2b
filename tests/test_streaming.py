"""A corpus read as a stream (`{hub: ..., streaming: true}`): the file path's blocks, held-out blocks first, an
exact resume after a kill. The stream is `datasets`' own, over a local dataset directory (no network here)."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch
import transformers

from madx.core.settings import LangTraining
from madx.core.sources import DataError, Source, hub_spec
from madx.data.corpus import build_blocks, iter_blocks
from madx.experiment import load_experiment
from madx.experiment.schema import ConfigError
from madx.training.language import train_language_adapter
from madx.training.streaming import StreamedCorpus, StreamedMLMBatches, buffer_shuffled, planned_heldout

from test_config_trust import local_config, local_tree  # noqa: F401 (a fixture)
from test_training import _train_lang, kill_after_checkpoint_and_rerun, read_log, weights


@pytest.fixture(scope="module")
def tokenizer(tiny_base):
    return transformers.AutoTokenizer.from_pretrained(tiny_base[1])


def as_stream(corpus, directory) -> str:
    """The corpus file as a hub dataset directory, read as a stream."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(corpus, directory / "train.txt")
    return f"hub:{directory}?streaming=true"


@pytest.mark.parametrize("line_by_line, max_tokens", [(False, None), (False, 5000), (True, None), (True, 3000)])
def test_a_stream_makes_the_files_blocks(tiny_base, tokenizer, tmp_path, line_by_line, max_tokens):
    corpus = tiny_base[0] / "corpora/qac.txt"
    stream = Source.parse(as_stream(corpus, tmp_path / "qac"))
    assert stream.streaming and str(stream).endswith("&streaming=true")
    from_file = build_blocks(tokenizer, [Source.parse(corpus)], 32, max_tokens, line_by_line)
    streamed = np.stack(list(iter_blocks(tokenizer, [stream], 32, max_tokens, line_by_line)))
    assert streamed.dtype == from_file.dtype and len(from_file) > 50
    np.testing.assert_array_equal(streamed, from_file)


def test_the_shuffle_buffer_is_a_seeded_permutation():
    order = lambda seed: list(buffer_shuffled(iter(range(1000)), 64, np.random.default_rng(seed)))  # noqa: E731
    assert sorted(order(1)) == list(range(1000)) and order(1) == order(1) and order(1) != order(2)
    assert order(1) != list(range(1000))


def test_held_out_blocks_come_first_and_never_train():
    blocks = [np.full(4, i, dtype=np.int32) for i in range(50)]
    corpus = StreamedCorpus(lambda: iter(blocks), n_heldout=5, seq_len=4, seed=0, name="s", buffer=8)
    assert corpus.heldout[:, 0].tolist() == [0, 1, 2, 3, 4]
    stream = corpus.blocks()
    first_pass = [int(next(stream)[0]) for _ in range(45)]
    assert sorted(first_pass) == list(range(5, 50))  # each training block once a pass, none held out
    second = [int(next(stream)[0]) for _ in range(45)]
    assert sorted(second) == list(range(5, 50)) and second != first_pass  # the next pass, shuffled anew
    assert corpus.epoch_blocks == 45 and corpus.record(90)["epochs"] == 2.0
    only_heldout = StreamedCorpus(lambda: iter(blocks[:3]), n_heldout=5, seq_len=4, seed=0, name="tiny.txt")
    with pytest.raises(DataError, match="tiny.txt: the stream makes only 3 blocks, all held out"):
        next(only_heldout.blocks())


def test_a_resumed_stream_takes_the_same_batches(tokenizer):
    blocks = [np.array([tokenizer.cls_token_id, 10 + i, 20 + i, tokenizer.sep_token_id], dtype=np.int32)
              for i in range(30)]
    corpus = lambda: StreamedCorpus(lambda: iter(blocks), 2, 4, seed=3, name="s", buffer=8)  # noqa: E731
    straight = StreamedMLMBatches(corpus(), tokenizer, batch_size=4, seed=3)
    batches = [straight(step) for step in range(12)]  # past the end of a pass: a new one
    resumed = StreamedMLMBatches(corpus(), tokenizer, batch_size=4, seed=3)
    for step in range(7, 12):
        batch, n = resumed(step)
        assert n == batches[step][1]
        for key, value in batch.items():
            torch.testing.assert_close(value, batches[step][0][key])


def test_streamed_training_is_killed_and_resumes_to_the_same_adapter(tiny_base, tmp_path):
    data, base = tiny_base
    corpus = as_stream(data / "corpora/qad.txt", tmp_path / "qad")
    env = dict(os.environ, MADX_NO_PROGRESS="1", HF_DATASETS_OFFLINE="1")
    straight, out = tmp_path / "straight", tmp_path / "resumed"
    subprocess.run(_train_lang(base, corpus, straight, 20), check=True, env=env, capture_output=True)
    kill_after_checkpoint_and_rerun(_train_lang(base, corpus, out, 20, ["--save-every", "10"]), out, 10, env)
    a, b = weights(straight), weights(out)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-6)
    assert [r["step"] for r in read_log(out)] == [r["step"] for r in read_log(straight)]
    record = json.loads((out / "training.json").read_text())
    assert record["streamed"] and record["blocks_read"] == 20 * 16
    assert record["corpus"] == [str(Source.parse(corpus))]
    assert record["heldout"]["blocks"] == 3  # 1% of the 320 blocks the budget reads, the stream's first
    assert record["heldout"]["perplexity"] > 0
    card = (out / "README.md").read_text()
    assert "streamed:" in card and record["corpus"][0] in card


def test_streaming_is_refused_where_it_cannot_work(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "train.txt").write_text("a b c\n")
    task = {"type": "ner", "train": "t.conll", "dev": "t.conll", "test": "t.conll"}
    config = {"base_model": "b", "source_language": "en", "languages": {"en": {"corpus": "t.conll"}},
              "tasks": {"ner": {**task, "train": {"hub": str(corpus), "streaming": True}}}}
    with pytest.raises(ConfigError, match="tasks.ner.train: streaming is for corpora"):
        load_experiment(config, check_files=False)
    config["tasks"]["ner"]["train"] = f"hub:{corpus}?streaming=true"  # the string form too
    with pytest.raises(ConfigError, match="tasks.ner.train: streaming is for corpora"):
        load_experiment(config, check_files=False)
    config["tasks"]["ner"]["train"] = f"hub:{corpus}?streaming=maybe"
    with pytest.raises(ConfigError, match="tasks.ner.train: .*streaming='maybe'; write streaming=true"):
        load_experiment(config, check_files=False)
    with pytest.raises(DataError, match="streaming='maybe'; write streaming=true"):
        Source.parse(f"hub:{corpus}?streaming=maybe")
    with pytest.raises(DataError, match="a streamed corpus cannot train embeddings"):
        train_language_adapter("b", "qad", [f"hub:{corpus}?streaming=true"], tmp_path / "out",
                               settings=LangTraining(embeddings="new"))
    assert not (tmp_path / "out").exists()


def test_a_streamed_corpus_is_refused_for_new_embeddings(local_tree, tmp_path):
    data, base = local_tree
    stream = as_stream(data / "corpora/qac.txt", tmp_path / "qac")
    config = local_config(data, base, setups=["madx", "madx_emb"])
    config["languages"]["qac"] = {"corpus": stream, "embeddings": {"mode": "new", "vocab_size": 30}}
    with pytest.raises(ConfigError, match=r"languages.qac.corpus: streamed, but madx_emb trains embeddings"):
        load_experiment(config, "c.yaml")
    config["languages"]["qac"]["corpus"] = str(data / "corpora/qac.txt")
    load_experiment(config, "c.yaml")  # the same from the file: planned


def test_a_pass_ending_with_the_budget_is_counted_and_a_small_stream_is_warned():
    blocks = [np.full(4, i, dtype=np.int32) for i in range(45)]
    corpus = StreamedCorpus(lambda: iter(blocks), n_heldout=5, seq_len=4, seed=0, name="small", buffer=8)
    stream = corpus.blocks()
    [next(stream) for _ in range(40)]  # exactly one pass: its length is known without reading on
    record = corpus.record(40)
    assert (record["blocks"], record["epochs"], record["corpus_share"]) == (40, 1.0, 1.0)
    assert record["corpus_warning"] == ("small: the stream has 45 blocks, and 5 of them (11%) are held out (1% of "
                                        "the blocks the step budget reads): add text, or lower max_steps")
    many = [np.full(4, i, dtype=np.int32) for i in range(400)]
    corpus = StreamedCorpus(lambda: iter(many), n_heldout=3, seq_len=4, seed=0, name="big", buffer=8)
    stream = corpus.blocks()
    [next(stream) for _ in range(397)]
    assert corpus.record(397)["corpus_warning"] is None  # 3 of 400: within the 1%
    empty = StreamedCorpus(lambda: iter([]), n_heldout=3, seq_len=4, seed=0, name="empty.txt")
    with pytest.raises(DataError, match="empty.txt: the stream makes no block of 4 tokens: check its split and column"):
        next(empty.blocks())


def test_the_held_out_share_of_a_stream_follows_the_budget_and_max_tokens():
    assert planned_heldout(LangTraining(max_steps=1000, batch_size=32, seq_len=34)) == 320  # 1% of 32,000
    assert planned_heldout(LangTraining(max_steps=1000, batch_size=32, seq_len=34, max_tokens=6400)) == 2  # of 200
    assert planned_heldout(LangTraining(max_steps=2, batch_size=8)) == 0  # 16 blocks: too few to hold any out
    assert hub_spec("x", {"split": "train", "streaming": False}) == "hub:x?split=train"
    assert hub_spec("x", {"streaming": True}) == "hub:x?streaming=true"
