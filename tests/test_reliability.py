"""Interruptions and concurrency: a NaN stops training with the step named and keeps the last good checkpoint;
two jobs building the same corpus cache at once do not corrupt it."""

import json
import multiprocessing

import numpy as np

from madx.cli import main as cli


def test_non_finite_loss_stops_with_the_step_and_keeps_the_checkpoint(tiny_base, tmp_path, capsys):
    data, base = tiny_base
    out = tmp_path / "la"
    # an absurd learning rate: the first update blows the adapter up, the next loss is not finite
    code = cli(["train-lang", "--base-model", str(base), "--lang", "qac", "--corpus", str(data / "corpora/qac.txt"),
                "--output", str(out), "--seq-len", "48", "--batch-size", "8", "--max-steps", "20", "--lr", "1e30",
                "--save-every", "1", "--warmup-steps", "0"])
    assert code == 2
    err = capsys.readouterr().err
    assert "loss is nan at step" in err or "loss is inf at step" in err, err[-2000:]
    step = int(err.split(" at step ")[1].split(";")[0])
    assert step >= 2
    checkpoints = sorted((tmp_path / "la.work" / "checkpoints").glob("step-*"))
    assert checkpoints and (checkpoints[-1] / "complete").read_text() == str(step - 1)
    assert f"last good checkpoint is {checkpoints[-1]}" in err
    assert not out.exists()

    # losses are read back only every log_every steps: the error still names the first bad step
    code = cli(["train-lang", "--base-model", str(base), "--lang", "qac", "--corpus", str(data / "corpora/qac.txt"),
                "--output", str(tmp_path / "la2"), "--seq-len", "48", "--batch-size", "8", "--max-steps", "20",
                "--lr", "1e30", "--save-every", "15", "--log-every", "15", "--warmup-steps", "0"])
    assert code == 2
    err = capsys.readouterr().err
    assert f" at step {step};" in err and "last good checkpoint is none" in err, err[-2000:]
    assert not list((tmp_path / "la2.work").glob("checkpoints/step-*"))


def _build_cache(args):
    base, corpus, cache, seq_len = args
    import transformers

    from madx.data.corpus import load_blocks
    from madx.core.sources import Source

    tokenizer = transformers.AutoTokenizer.from_pretrained(base)
    return load_blocks(tokenizer, [Source.parse(corpus)], seq_len, cache)


def test_two_jobs_preparing_the_same_cache_at_once(tiny_base, tmp_path):
    data, base = tiny_base
    corpus = tmp_path / "big.txt"
    corpus.write_text((data / "corpora/qaa.txt").read_text() * 4)
    cache = tmp_path / "cache"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        first, second = pool.map(_build_cache, [(str(base), str(corpus), str(cache), 32)] * 2)
    assert np.array_equal(first, second) and len(first) > 100
    entries = sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock"))
    assert len(entries) == 1 and entries[0].startswith("blocks-")  # one finished entry, no temporary left
    assert json.loads((cache / entries[0] / "sources.json").read_text()) == [str(corpus)]
    assert np.array_equal(_build_cache((str(base), str(corpus), str(cache), 32)), first)
