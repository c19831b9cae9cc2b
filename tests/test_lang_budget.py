"""What a language adapter's budget reads of its corpus (share, epochs), and the warning for a corpus too small to
hold any of it out: in the job log and in training.json."""

import json

import numpy as np

from madx.cli import main as cli
from madx.core.settings import LangTraining
from madx.training.language import corpus_budget, small_corpus_warning
from madx.training.mlm import HELDOUT_MIN_BLOCKS, split_heldout

ARGS = ["--batch-size", "8", "--lr", "5e-3", "--log-every", "5"]


def _train(base, corpus, out, *args):
    log_file = out.with_suffix(".log")
    assert cli(["train-lang", "--base-model", str(base), "--lang", "qac", "--corpus", str(corpus), "--output",
                str(out), "--log-file", str(log_file), *ARGS, *args]) == 0
    return json.loads((out / "training.json").read_text()), log_file.read_text()


def test_the_log_and_training_json_say_how_much_of_the_corpus_the_budget_reads(tiny_base, tmp_path):
    data, base = tiny_base
    info, log = _train(base, data / "corpora/qac.txt", tmp_path / "la", "--seq-len", "48", "--max-steps", "5")
    share = 5 * 8 / info["blocks"]  # 40 of the training blocks, each at most once (one shuffle per epoch)
    assert 0.01 < share < 1 and info["heldout"]["blocks"] >= 1
    assert info["corpus_share"] == round(share, 6) and info["epochs"] == round(share, 4)
    assert f"5 steps x 8 blocks read {100 * share:.1f}% of them" in log
    assert "epochs" not in log and "too few to hold any out" not in log and info["corpus_warning"] is None


def test_a_three_line_corpus_trains_with_a_warning_that_names_the_sizes(tiny_base, tmp_path):
    data, base = tiny_base
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("\n".join((data / "corpora/qac.txt").read_text().splitlines()[:3]) + "\n")
    info, log = _train(base, corpus, tmp_path / "la", "--seq-len", "16", "--max-steps", "4")
    n = info["blocks"]
    assert 1 <= n < HELDOUT_MIN_BLOCKS and info["heldout"] is None  # nothing held out
    assert info["epochs"] == round(4 * 8 / n, 4) and info["corpus_share"] == 1.0
    assert f"4 steps x 8 blocks read all of them, {4 * 8 / n:,.1f} epochs" in log
    warning = (f"WARNING madx.training.language: qac: the corpus makes only {n} blocks of 16 tokens ({16 * n:,} tokens), "
               "too few to hold any out: no held-out perplexity will say whether the language adapter learned "
               "anything (the held-out split is the last 1% of the blocks and needs at least 100 blocks, 1,600 "
               "tokens at this seq_len); add text to the corpus, or accept no held-out measure")
    assert warning in log and info["corpus_warning"] == warning.split(": ", 1)[1]


def test_the_warning_follows_the_held_out_rule():
    settings = LangTraining(seq_len=16, line_by_line=True)
    for n in (HELDOUT_MIN_BLOCKS - 1, HELDOUT_MIN_BLOCKS):
        blocks = np.zeros((n, 16), dtype=np.int32)
        warned = small_corpus_warning("xx", blocks, settings) is not None
        assert warned == (len(split_heldout(blocks)[1]) == 0), n  # a warning exactly when nothing is held out
    assert small_corpus_warning("xx", np.zeros((3, 16)), settings).startswith(
        "xx: the corpus makes only 3 lines (one block each), too few to hold any out")
    assert corpus_budget(1000, LangTraining(max_steps=10, batch_size=7)) == {"corpus_share": 0.07, "epochs": 0.07}
    assert corpus_budget(10, LangTraining(max_steps=10, batch_size=7)) == {"corpus_share": 1.0, "epochs": 7.0}
