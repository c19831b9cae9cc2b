"""New scripts: romanization (madx_translit) and new input embeddings (madx_emb), on the tiny demo's qad (Cyrillic,
in the tokenizer, never seen by the base model): one romanizer for corpus and test data, the lexical start,
row-only training, save/load, the errors, and both setups through the evaluation job."""

import json

import pytest
import torch

import madx
from madx.adapters.embeddings import (EmbeddingLoadError, lexical_start, load_embeddings, save_embeddings,
                                      swap_input_embeddings, use_new_vocabulary)
from madx.cli import main as cli
from madx.core.sources import DataError, Source
from madx.data.corpus import cache_key, corpus_lines, load_blocks
from madx.tasks.tagging import Sentence, read_labelled
from madx.data.romanize import RomanizerError, romanizer
from madx.data.spm import train_language_tokenizer
from madx.tasks.qa import QAExample
from madx.demo.grammar import transliterate
from madx.evaluation.evaluate import Run, evaluate_runs
from madx.tasks.families import romanize_examples

LANG_ARGS = ["--seq-len", "48", "--batch-size", "16", "--lr", "5e-3", "--log-every", "5"]


# ---- romanization


def test_demo_romanizer_inverts_the_demo_script_and_keeps_words_and_case():
    roman = romanizer("demo")
    for word in ("Lugeir", "Motors", "pelado", "Berlin"):  # no q, w or x: the letters the demo's Cyrillic merges
        assert roman.text(transliterate(word)) == word
    assert roman.text(transliterate("Quex")) == "Kueks"  # q -> к -> k, x -> кс -> ks: where it loses, said so
    text = "Лугеир  Моторс\tпеладо "
    assert roman.text(text) == "Lugeir  Motors\tpelado "  # whitespace as it was
    assert roman.text(text) == romanizer("demo").text(text)  # deterministic
    assert roman.words(["Лугеир", "-", "Моторс"]) == ["Lugeir", "-", "Motors"]


def test_corpus_and_test_data_are_romanized_identically(tiny_base, tmp_path):
    data, _ = tiny_base
    roman = romanizer("demo")
    sentences, _ = read_labelled(str(data / "ner/qad.test.conll"))
    corpus = tmp_path / "qad.txt"  # the test sentences as a corpus: the same words through both paths
    corpus.write_text("\n".join(" ".join(s.tokens) for s in sentences) + "\n")
    lines = list(corpus_lines(Source.parse(str(corpus)), roman))
    romanized = romanize_examples(sentences, roman)
    assert lines == [" ".join(s.tokens) for s in romanized]
    assert [s.tags for s in romanized] == [s.tags for s in sentences]  # labels untouched
    assert not any("\u0400" <= ch <= "\u04ff" for line in lines for ch in line)  # no Cyrillic left


def test_romanized_corpus_is_its_own_cache_entry(tiny_base, tmp_path):
    data, base = tiny_base
    tokenizer = madx.data.hub.load_tokenizer(str(base))
    sources = [Source.parse(str(data / "corpora/qad.txt"))]
    plain = cache_key(tokenizer, sources, 32, None, True)
    roman = cache_key(tokenizer, sources, 32, None, True, romanizer("demo"))
    assert plain != roman
    first = load_blocks(tokenizer, sources, 32, tmp_path, line_by_line=True, romanize=romanizer("demo"))
    again = load_blocks(tokenizer, sources, 32, tmp_path, line_by_line=True, romanize=romanizer("demo"))
    assert (first == again).all() and len(list(tmp_path.glob("blocks-*"))) == 1  # read back, not rebuilt
    unk = tokenizer.unk_token_id
    latin = load_blocks(tokenizer, sources, 32, tmp_path, line_by_line=True)
    assert not (first == latin).all() and (first != unk).all()


def test_qa_answers_follow_the_romanized_context():
    context = "Кто: Лугеир Моторс из Берлин."
    start = context.index("Моторс")
    example = QAExample("1", "Кто?", context, [("Моторс", start), ("нет", 0)], "f:1", spans=[(start, start + 6)])
    [out] = romanize_examples([example], romanizer("demo"))
    assert out.context == "Kto: Lugeir Motors iz Berlin." and out.question == "Kto?"
    (text, new_start), missing = out.answers
    assert text == "Motors" and out.context[new_start:new_start + len(text)] == "Motors"
    assert out.spans == [(new_start, new_start + 6)] and missing == ("net", 0)


def test_a_missing_romanizer_is_named_with_its_pip_package(monkeypatch):
    import importlib.util

    from madx.experiment import ConfigError
    from test_workflow import demo_config

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uroman" else real(name, *a))
    romanizer.cache_clear()
    with pytest.raises(RomanizerError, match=r"romanizer 'uroman' is not installed: pip install uroman"):
        romanizer("uroman")
    config = demo_config(("en", "qad"))
    config["languages"]["qad"]["romanize"] = "uroman"
    with pytest.raises(ConfigError, match=r"languages\.qad\.romanize: romanizer 'uroman' is not installed: pip "
                                          r"install uroman"):
        madx.experiment.load_experiment(config, "c.yaml", check_files=False)
    with pytest.raises(RomanizerError, match="use one of demo, anyascii, uroman"):
        romanizer("nope")


def test_anyascii_romanizes_real_scripts():
    pytest.importorskip("anyascii")
    roman = romanizer("anyascii")
    assert roman.text("Лугеир Моторс") == "Lugeir Motors"
    assert roman.identity.startswith("anyascii:")


# ---- embeddings


def test_new_tokenizer_rows_start_from_the_base_rows_they_overlap(tiny_base):
    data, base = tiny_base
    base_tokenizer = madx.data.hub.load_tokenizer(str(base))
    model = madx.data.hub.load_mlm_model(str(base))
    lines = [line for line in (data / "corpora/qad.txt").read_text().splitlines() if line]
    tokenizer = train_language_tokenizer(lines, "qad", 300, base_tokenizer)
    assert len(tokenizer) == 300
    base_weight = model.get_input_embeddings().weight.detach()
    base_vocab = base_tokenizer.get_vocab()
    # without a romanizer: every piece the base vocabulary has starts from its row
    weight, counts = lexical_start(tokenizer, base_tokenizer, base_weight)
    shared = [p for p in tokenizer.get_vocab() if p in base_vocab]
    assert len(shared) == counts["identical"] > 50  # the specials and qad's pieces the base tokenizer has
    for piece in shared:
        assert torch.equal(weight[tokenizer.convert_tokens_to_ids(piece)], base_weight[base_vocab[piece]])
    # with one: a Cyrillic piece (whose base row never trained) starts from its romanized form's base rows
    roman = romanizer("demo")
    weight, counts = lexical_start(tokenizer, base_tokenizer, base_weight, roman)
    cyrillic = [p for p in tokenizer.get_vocab() if roman.text(p.lstrip("\u2581")) != p.lstrip("\u2581")]
    assert counts["romanized"] == len(cyrillic) > 50 and counts["identical"] == len(shared) - len(
        [p for p in cyrillic if p in base_vocab])
    for piece in cyrillic[:40]:
        word = roman.text(piece.lstrip("\u2581"))
        if piece.startswith("\u2581") and "\u2581" + word in base_vocab:
            expected = base_weight[base_vocab["\u2581" + word]]
        elif not piece.startswith("\u2581") and word in base_vocab:
            expected = base_weight[base_vocab[word]]
        else:
            ids = base_tokenizer(word, add_special_tokens=False)["input_ids"]
            if not piece.startswith("\u2581"):
                ids = [i for i in ids if i != base_tokenizer.convert_tokens_to_ids("\u2581")] or ids
            expected = base_weight[ids].mean(0)
        assert torch.allclose(weight[tokenizer.convert_tokens_to_ids(piece)], expected), piece
    # the MLM head over the new vocabulary: tied to the new rows
    use_new_vocabulary(model, weight)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    out = model(input_ids=torch.tensor([[0, 5, 6, 2]])).logits
    assert out.shape[-1] == 300


def test_a_corpus_too_small_for_the_tokenizer_names_language_and_sizes(tiny_base):
    _, base = tiny_base
    base_tokenizer = madx.data.hub.load_tokenizer(str(base))
    with pytest.raises(DataError, match=r"qad: corpus too small for a tokenizer of 5000 pieces: 3 lines, 6 words, "
                                        r"4 distinct words; it allows at most \d+"):
        train_language_tokenizer(["ab cd", "ab ef", "gh ab"], "qad", 5000, base_tokenizer)


def test_embeddings_and_adapter_save_load_give_equal_outputs(tiny_base, tmp_path):
    data, base = tiny_base
    base_tokenizer = madx.data.hub.load_tokenizer(str(base))
    lines = [line for line in (data / "corpora/qad.txt").read_text().splitlines() if line]
    tokenizer = train_language_tokenizer(lines, "qad", 200, base_tokenizer)
    model = madx.data.hub.load_mlm_model(str(base))
    weight, _ = lexical_start(tokenizer, base_tokenizer, model.get_input_embeddings().weight.detach())
    use_new_vocabulary(model, weight + 0.1 * torch.randn_like(weight))
    madx.add_adapter(model, "qad", madx.LANGUAGE_ADAPTER)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".qad." in name or "invertible_adapters.qad" in name:
                p.add_(0.1 * torch.randn_like(p))
    madx.activate(model, "qad")
    model.eval()
    madx.save_adapter(model, "qad", tmp_path / "qad")
    save_embeddings(tmp_path / "qad/embeddings", model.get_input_embeddings().weight, tokenizer, {"mode": "new"})
    batch = tokenizer(lines[:4], padding=True, return_tensors="pt")
    with torch.no_grad():
        before = model.base_model(**batch).last_hidden_state

    fresh = madx.data.hub.load_mlm_model(str(base))
    loaded_weight, loaded_tokenizer = load_embeddings(tmp_path / "qad/embeddings", hidden_size=64)
    assert loaded_tokenizer.get_vocab() == tokenizer.get_vocab()
    swap_input_embeddings(fresh, loaded_weight)
    madx.load_adapter(fresh, tmp_path / "qad")
    madx.activate(fresh, "qad")
    fresh.eval()
    with torch.no_grad():
        after = fresh.base_model(**loaded_tokenizer(lines[:4], padding=True, return_tensors="pt")).last_hidden_state
    assert torch.allclose(before, after, atol=1e-6)


def test_a_tokenizer_that_does_not_match_the_embeddings_is_an_error(tiny_base, tmp_path):
    data, base = tiny_base
    base_tokenizer = madx.data.hub.load_tokenizer(str(base))
    weight = torch.randn(len(base_tokenizer) + 3, 64)
    save_embeddings(tmp_path / "emb", weight, base_tokenizer, {"mode": "new"})
    with pytest.raises(EmbeddingLoadError, match=rf"the tokenizer has {len(base_tokenizer)} pieces but embedding.pt "
                                                 rf"has {len(base_tokenizer) + 3} rows"):
        load_embeddings(tmp_path / "emb")
    save_embeddings(tmp_path / "ok", weight[:-3], base_tokenizer, {"mode": "new"})
    with pytest.raises(EmbeddingLoadError, match="rows of 64 values, the base model's hidden size is 128"):
        load_embeddings(tmp_path / "ok", hidden_size=128)
    import shutil

    shutil.rmtree(tmp_path / "ok/tokenizer")
    with pytest.raises(EmbeddingLoadError, match="no tokenizer/ beside embedding.pt"):
        load_embeddings(tmp_path / "ok")


# ---- through the commands: training, and the evaluation job


@pytest.fixture(scope="module")
def new_script_adapters(tiny_base, tmp_path_factory):
    """A madx NER task adapter (on en's adapter), and qad's adapters: plain, romanized, new embeddings, rows."""
    data, base = tiny_base
    out = tmp_path_factory.mktemp("scripts")

    def train_lang(lang, name, steps, *extra):
        corpus_of = str(data / f"corpora/{lang}.txt")
        assert cli(["train-lang", "--base-model", str(base), "--lang", lang, "--corpus", corpus_of, "--output",
                    str(out / name), "--max-steps", str(steps), *LANG_ARGS, *extra]) == 0

    train_lang("en", "la_en", 20)
    assert cli(["train-task", "--base-model", str(base), "--task", "ner", "--setup", "madx", "--lang-adapter",
                str(out / "la_en"), "--train", str(data / "ner/en.train.conll"), "--dev", str(data / "ner/en.dev.conll"),
                "--output", str(out / "ner"), "--max-length", "48", "--max-steps", "150", "--batch-size", "32",
                "--lr", "5e-3", "--eval-every", "150"]) == 0
    train_lang("qad", "translit", 200, "--romanize", "demo")
    train_lang("qad", "emb", 120, "--embeddings", "new", "--vocab-size", "300", "--embedding-lr", "0.02",
               "--match-romanized", "demo")
    train_lang("qad", "rows", 10, "--embeddings", "rows", "--weight-decay", "0.1")
    return data, base, out


def loss_went_down(directory, by: float = 0.3) -> bool:
    losses = [json.loads(line)["loss"] for line in (directory / "train_log.jsonl").read_text().splitlines()]
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first - by, (first, last)
    return True


def test_translit_adapter_trains_on_the_romanized_corpus(new_script_adapters):
    _, _, out = new_script_adapters
    info = json.loads((out / "translit/training.json").read_text())
    assert info["romanized"].startswith("demo:") and info["coverage"]["script"] == "LATIN"
    assert loss_went_down(out / "translit")
    assert not (out / "translit/embeddings").exists()


def test_new_embeddings_train_with_the_adapter(new_script_adapters):
    _, base, out = new_script_adapters
    info = json.loads((out / "emb/training.json").read_text())
    assert info["embeddings"]["mode"] == "new" and info["embeddings"]["vocab_size"] == 300
    assert info["heldout"]["base_perplexity"] is None  # other pieces: no comparison with the base
    assert loss_went_down(out / "emb")
    weight, tokenizer = load_embeddings(out / "emb/embeddings", hidden_size=64)
    assert len(tokenizer) == 300 and weight.shape == (300, 64)
    started, _ = lexical_start(tokenizer, madx.data.hub.load_tokenizer(str(base)),
                               madx.data.hub.load_mlm_model(str(base)).get_input_embeddings().weight.detach())
    assert not torch.allclose(weight, started)  # the rows trained


def test_rows_mode_changes_only_the_rows_the_language_uses(new_script_adapters):
    data, base, out = new_script_adapters
    weight, tokenizer = load_embeddings(out / "rows/embeddings", hidden_size=64)
    base_tokenizer = madx.data.hub.load_tokenizer(str(base))
    assert tokenizer.get_vocab() == base_tokenizer.get_vocab()
    base_weight = madx.data.hub.load_mlm_model(str(base)).get_input_embeddings().weight.detach()
    used = set()
    for line in (data / "corpora/qad.txt").read_text().splitlines():
        used |= set(base_tokenizer(line)["input_ids"])
    changed = {i for i in range(len(weight)) if not torch.equal(weight[i], base_weight[i])}
    assert changed and changed <= used  # weight decay 0.1 asked: the untouched rows still stay exactly
    assert all(torch.equal(weight[i], base_weight[i]) for i in set(range(len(weight))) - used)
    info = json.loads((out / "rows/embeddings/madx_embeddings.json").read_text())
    assert info["mode"] == "rows" and info["rows_trained"] == len(used - {base_tokenizer.pad_token_id})


def test_evaluation_job_runs_both_new_script_setups(new_script_adapters, tmp_path):
    data, base, out = new_script_adapters
    test = str(data / "ner/qad.test.conll")
    runs = [Run("madx_translit", 1, out / "ner", out / "translit", tmp_path / "translit.json", "demo"),
            Run("madx_emb", 1, out / "ner", out / "emb", tmp_path / "emb.json"),
            Run("madx", 1, out / "ner", out / "rows", tmp_path / "madx.json")]
    results = evaluate_runs(str(base), runs, test, lang="qad", task="ner", source="en", mixed_precision="no")
    translit, emb, plain = results
    assert translit["stack"][1] == "ner" and translit["romanized"].startswith("demo:")
    assert emb["embeddings"].endswith("emb/embeddings") and "romanized" not in emb
    assert "embeddings" not in plain  # a madx run on an adapter with embeddings reads with the base's own rows
    assert all(r["n_sentences"] == 100 for r in results)
    # reruns keep them; the romanizer is part of the fingerprint
    again = evaluate_runs(str(base), runs, test, lang="qad", task="ner", source="en", mixed_precision="no")
    assert [r["fingerprint"] for r in again] == [r["fingerprint"] for r in results]
    with pytest.raises(ValueError, match="madx_translit .*needs the target's romanizer"):
        Run("madx_translit", 1, out / "ner", out / "translit", tmp_path / "x.json")
    with pytest.raises(EmbeddingLoadError, match=r"madx_emb \(seed 1\): language adapter .*translit has no embeddings/"):
        evaluate_runs(str(base), [Run("madx_emb", 1, out / "ner", out / "translit", tmp_path / "y.json")], test,
                      lang="qad", task="ner", source="en", mixed_precision="no")


def test_sentences_keep_their_words_when_romanized():
    roman = romanizer("demo")
    [s] = romanize_examples([Sentence(["Лугеир", "---", "Моторс"], ["B-ORG", "O", "I-ORG"], "f:1")], roman)
    assert s.tokens == ["Lugeir", "---", "Motors"] and s.tags == ["B-ORG", "O", "I-ORG"]


@pytest.mark.parametrize("edit, message", [
    (lambda qad: qad.pop("romanize"), r"languages\.qad\.romanize: madx_translit needs a romanizer for qad \(demo, "
                                      r"anyascii, uroman\)"),
    (lambda qad: qad.update(setups=["madx_translit"]), r"languages\.qad\.embeddings: set, but qad runs no madx_emb"),
    (lambda qad: qad.update(setups=["madx"]), r"languages\.qad\.setups\.0: 'madx' is not one of \['madx_translit', "
                                              r"'madx_emb', 'madx_nearest', 'madx_avg', 'madx_emea'\]"),
    (lambda qad: qad.update(romanize="latin"), r"languages\.qad\.romanize: 'latin' is not one of"),
    (lambda qad: qad.update(embeddings={"mode": "new", "vocab": 3}), r"languages\.qad\.embeddings: unknown key 'vocab'"),
])
def test_new_script_config_errors_name_the_key(edit, message):
    from madx.experiment import ConfigError, load_experiment
    from test_workflow import demo_config

    config = demo_config(("en", "qad"))
    edit(config["languages"]["qad"])
    with pytest.raises(ConfigError, match=message):
        load_experiment(config, "c.yaml", check_files=False)


def test_new_script_setups_run_only_where_asked():
    from madx.experiment import load_experiment
    from test_workflow import demo_config

    exp = load_experiment(demo_config(("en", "qac", "qad")), "c.yaml", check_files=False)
    assert {setup for setup, _ in exp.eval_runs("ner", "en", "qac")} == {"madx", "source_la", "task_only", "full_ft"}
    assert {setup for setup, _ in exp.eval_runs("ner", "en", "qad")} == {
        "madx", "source_la", "task_only", "full_ft", "madx_translit", "madx_emb"}
    assert exp.script_adapters() == [("emb", "qad"), ("translit", "qad")]
    assert exp.eval_lang_adapters("madx_translit", "en", "qad") == ["results/adapters/lang_translit/qad"]
    assert exp.script_training("translit", "qad")["romanize"] == "demo"
    emb = exp.script_training("emb", "qad")
    assert emb["embeddings"] == "new" and emb["match_romanized"] == "demo" and "romanize" not in emb
    # without madx among the config's setups, qad's new-script setups still need madx's task adapter, trained on
    # the source's language adapter; no other language adapter is needed
    config = demo_config(("en", "qac", "qad"))
    config["setups"] = ["task_only"]
    exp = load_experiment(config, "c.yaml", check_files=False)
    assert exp.lang_adapters_to_train() == ["en"] and exp.script_adapters() == [("emb", "qad"), ("translit", "qad")]
