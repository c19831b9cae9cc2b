"""K-adapters (madx/adapters/kadapter.py): beside the frozen encoder, its outputs unchanged; the forward equals its
parts composed by hand; save/load gives the same features; only the K-adapter trains; remove_adapters undoes it."""

import json

import pytest
import torch

import madx
from madx.core.settings import KnowledgeTraining
from madx.adapters.kadapter import KADAPTER_CONFIG, KADAPTER_WEIGHTS, kadapters
from tiny import flip_bytes, tiny_model

SMALL = madx.KAdapterConfig(layers=(0, 2, 3), transformer_layers=2, hidden_size=16, intermediate_size=32,
                            num_attention_heads=2, dropout=0.0, init_range=0.02)


def batch():
    torch.manual_seed(3)
    ids = torch.randint(5, 100, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # a padded sequence: the K-adapter's attention must skip its padding
    return ids, mask


def test_the_papers_values_are_the_defaults():
    config = madx.KAdapterConfig()
    assert (config.layers, config.transformer_layers, config.hidden_size, config.intermediate_size,
            config.num_attention_heads) == ((0, 11, 23), 2, 768, 3072, 12)


def test_adding_one_leaves_the_base_outputs_exactly_equal():
    model = tiny_model(head="base")
    ids, mask = batch()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with torch.no_grad():
        plain = model(input_ids=ids, attention_mask=mask).last_hidden_state
        madx.add_kadapter(model, "syntax", SMALL)
        after = model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.equal(plain, after)
    added = set(model.state_dict()) - set(before)
    assert added and all(key.startswith("kadapters.syntax.") for key in added)
    for key, value in before.items():
        assert torch.equal(model.state_dict()[key], value)


def test_the_forward_is_its_parts_composed_by_hand():
    model = tiny_model(head="base")
    module = madx.add_kadapter(model, "syntax", SMALL)
    ids, mask = batch()
    with torch.no_grad():
        features = madx.knowledge_features(model, ["syntax"], ids, mask)
        states = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        out = torch.zeros_like(states[0])
        for index, layer in zip(SMALL.layers, module.layers):  # x = h[l] + previous; x + up(T(T(down(x))))
            x = states[index] + out
            h = layer.down(x)
            for transformer in layer.transformer:
                h = transformer(h, src_key_padding_mask=mask == 0)
            out = x + layer.up(h)
    hidden = model.config.hidden_size
    assert features.shape == (3, 9, 2 * hidden)
    torch.testing.assert_close(features[..., :hidden], states[-1], rtol=0, atol=0)
    torch.testing.assert_close(features[..., hidden:], out, rtol=0, atol=0)
    # at the paper's initial weights (std 0.0002) each adapter layer starts near its input: out ~ the sum of h[l]
    madx.add_kadapter(model, "fresh", SMALL.__class__(**{**SMALL.to_dict(), "init_range": 0.0002}))
    with torch.no_grad():
        fresh = madx.knowledge_features(model, ["fresh"], ids, mask)[..., hidden:]
    assert (fresh - sum(states[i] for i in SMALL.layers)).abs().max() < 1e-2 * states[-1].abs().max()


def test_save_and_load_give_the_same_features(tmp_path):
    model = tiny_model(head="base")
    madx.add_kadapter(model, "syntax", SMALL)
    ids, mask = batch()
    madx.save_kadapter(model, "syntax", tmp_path / "k")
    assert {p.name for p in (tmp_path / "k").iterdir()} == {KADAPTER_CONFIG, KADAPTER_WEIGHTS, "madx_checksums.json"}
    assert json.loads((tmp_path / "k" / KADAPTER_CONFIG).read_text())["config"]["layers"] == [0, 2, 3]
    fresh = tiny_model(head="base")
    fresh.load_state_dict(model.state_dict(), strict=False)
    assert madx.load_kadapter(fresh, tmp_path / "k") == "syntax"
    with torch.no_grad():
        torch.testing.assert_close(madx.knowledge_features(fresh, ["syntax"], ids, mask),
                                   madx.knowledge_features(model, ["syntax"], ids, mask), rtol=0, atol=0)
    flip_bytes(tmp_path / "k" / KADAPTER_WEIGHTS)
    with pytest.raises(madx.KAdapterError, match="kadapter.safetensors"):
        madx.load_kadapter(tiny_model(head="base"), tmp_path / "k")


def test_only_the_kadapter_trains_and_two_concatenate():
    model = tiny_model(head="base")
    madx.add_kadapter(model, "syntax", SMALL)
    madx.add_kadapter(model, "facts", madx.KAdapterConfig(layers=(1,), transformer_layers=1, hidden_size=16,
                                                         intermediate_size=16, num_attention_heads=2, dropout=0.0))
    madx.train_kadapters(model, "syntax")
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trained and all(name.startswith("kadapters.syntax.") for name in trained)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    ids, mask = batch()
    features = madx.knowledge_features(model, ["syntax", "facts"], ids, mask)
    assert features.shape[-1] == 3 * model.config.hidden_size
    features[..., model.config.hidden_size:].pow(2).mean().backward()
    optimizer.step()
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and changed <= trained


def test_remove_adapters_undoes_it_and_bad_ones_are_refused():
    model = tiny_model(head="base")
    keys = set(model.state_dict())
    madx.add_adapter(model, "en", madx.LANGUAGE_ADAPTER)
    madx.add_kadapter(model, "syntax", SMALL)
    madx.remove_adapters(model)
    assert set(model.state_dict()) == keys and not kadapters(model)
    with pytest.raises(madx.KAdapterError, match=r"layers \[0, 2, 9\], but the base model has hidden states 0..3"):
        madx.add_kadapter(model, "deep", madx.KAdapterConfig(layers=(0, 2, 9), hidden_size=16, intermediate_size=16,
                                                            num_attention_heads=2))
    with pytest.raises(madx.KAdapterError, match=r"layers \[3, 1\]: give one or more hidden-state indices, increasing"):
        madx.KAdapterConfig(layers=(3, 1))
    with pytest.raises(madx.KAdapterError, match="hidden_size 10 is not a multiple of num_attention_heads 4"):
        madx.KAdapterConfig(hidden_size=10, num_attention_heads=4)
    with pytest.raises(madx.KAdapterError, match="no K-adapter 'facts' in the model"):
        madx.knowledge_features(model, ["facts"], *batch())


def test_a_linguistic_kadapter_learns_heads_and_only_it_and_its_head_train():
    """Trees of two shapes over a small lexicon (a determiner's head is the next noun; nouns attach to the verb,
    the verb is the root): the K-adapter and its head learn them (loss down, UAS far above the next-word
    baseline), and nothing of the base model moves."""
    import random

    import transformers

    from madx.data.spm import xlmr_tokenizer
    from madx.tasks.knowledge import Tree, attachment_scores, collate_trees, encode_trees
    from madx.training.kadapter import train_kadapter
    from tiny import tiny_config

    nouns, verbs = ["dog", "cat", "bird", "fish"], ["sees", "likes", "hears"]
    tokenizer = xlmr_tokenizer([(f"\u2581{w}", -1.0) for w in ["the", *nouns, *verbs]])
    rng = random.Random(0)
    trees = []
    for _ in range(64):
        n1, n2, v = rng.choice(nouns), rng.choice(nouns), rng.choice(verbs)
        if rng.random() < 0.5:
            trees.append(Tree(["the", n1, v, "the", n2], [2, 3, 0, 5, 3], ["det", "nsubj", "root", "det", "obj"], "t"))
        else:
            trees.append(Tree([n1, v, "the", n2], [2, 0, 4, 2], ["nsubj", "root", "det", "obj"], "t"))
    torch.manual_seed(0)
    model = transformers.XLMRobertaModel(tiny_config(vocab_size=len(tokenizer))).eval()
    base = {key: value.clone() for key, value in model.state_dict().items()}
    madx.add_kadapter(model, "syntax", madx.KAdapterConfig(layers=(0, 3), transformer_layers=1, hidden_size=32,
                                                          intermediate_size=64, num_attention_heads=4, dropout=0.0,
                                                          init_range=0.02))
    task, losses, _ = train_kadapter(model, "syntax", "dependency", trees, tokenizer,
                                     settings=KnowledgeTraining(max_steps=80, batch_size=16, lr=3e-3))
    assert sum(losses[-5:]) / 5 < 0.3 * sum(losses[:5]) / 5, losses
    for key, value in base.items():
        assert torch.equal(model.state_dict()[key], value), key
    batch = collate_trees(encode_trees(trees, tokenizer, 32), tokenizer.pad_token_id)
    with torch.no_grad():
        scores = task.head(madx.knowledge_features(model, ["syntax"], batch["input_ids"], batch["attention_mask"]),
                      batch["attention_mask"])
    predicted = []  # back from positions to word indices (1-based; 0 the root)
    for i, tree in enumerate(trees):
        firsts = [p for p, label in enumerate(batch["labels"][i].tolist()) if label != -100]
        word_of = {position: w + 1 for w, position in enumerate(firsts)}
        predicted.append([word_of.get(int(scores[i, p].argmax()), 0) for p in firsts])
    uas = attachment_scores(trees, predicted)["uas"]
    next_word = attachment_scores(trees, [[min(w + 2, len(t.words)) if w + 1 < len(t.words) else 0
                                            for w in range(len(t.words))] for t in trees])["uas"]
    assert uas > next_word + 0.2 and uas > 0.9, (uas, next_word)


def test_a_factual_kadapter_learns_the_relation_between_two_spans(tmp_path):
    """Which of two relations holds is said by the word between the spans ("in" or "near"), with the spans' words
    drawn at random: the relation head over the K-adapter's features learns it (accuracy far above the majority)."""
    import random

    import transformers

    from madx.data.spm import xlmr_tokenizer
    from madx.tasks.knowledge import read_relations, relation_scores
    from madx.training.kadapter import train_kadapter
    from tiny import tiny_config

    places = ["paris", "rome", "oslo", "lima"]
    tokenizer = xlmr_tokenizer([(f"\u2581{w}", -1.0) for w in [*places, "is", "in", "near"]])
    rng, rows = random.Random(1), []
    for _ in range(60):
        a, b, word = rng.choice(places), rng.choice(places), rng.choice(["in", "near"])
        text = f"{a} is {word} {b}"
        rows.append({"text": text, "subject": [0, len(a)], "object": [len(text) - len(b), len(text)],
                     "relation": "located_in" if word == "in" else "close_to"})
    path = tmp_path / "facts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    examples = read_relations(path)
    torch.manual_seed(0)
    model = transformers.XLMRobertaModel(tiny_config(vocab_size=len(tokenizer))).eval()
    madx.add_kadapter(model, "facts", madx.KAdapterConfig(layers=(0, 3), transformer_layers=1, hidden_size=32,
                                                         intermediate_size=64, num_attention_heads=4, dropout=0.0,
                                                         init_range=0.02))
    task, losses, _ = train_kadapter(model, "facts", "relation", examples, tokenizer,
                                     settings=KnowledgeTraining(max_steps=60, lr=3e-3))
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5, losses
    batch = task.collate(task.encode(examples, tokenizer, 32), tokenizer.pad_token_id)
    with torch.no_grad():
        logits = task.head(madx.knowledge_features(model, ["facts"], batch["input_ids"], batch["attention_mask"]),
                           batch["subject"], batch["object"])
    gold = [e.relation for e in examples]
    accuracy = relation_scores(gold, [task.labels[i] for i in logits.argmax(-1).tolist()])["accuracy"]
    majority = max(gold.count(label) for label in set(gold)) / len(gold)
    assert accuracy > majority + 0.2 and accuracy > 0.9, (accuracy, majority)


# ---- the commands: a K-adapter trained on the demo's trees, a task head reading it, its evaluation


def test_a_task_reads_a_trained_kadapter_through_the_commands(tiny_base, tmp_path):
    """train-kadapter learns the demo's trees above their trivial baseline; train-task --knowledge trains only the
    task adapter, head and knowledge reader (the K-adapter's weights unchanged); evaluate loads the reader and
    the K-adapter, fingerprints the K-adapter, and a run without K-adapters on the same job is untouched."""
    from madx.cli import main as cli
    from madx.evaluation.fingerprints import run_inputs
    from madx.evaluation.runs import Run
    from safetensors.torch import load_file

    data, base = tiny_base
    kadapter = tmp_path / "syntax"
    assert cli(["train-kadapter", "--base-model", str(base), "--name", "syntax", "--type", "dependency",
                "--train", str(data / "dependency/en.train.conllu"), "--dev", str(data / "dependency/en.dev.conllu"),
                "--output", str(kadapter), "--layers", "0", "1", "2", "--transformer-layers", "1", "--hidden-size",
                "32", "--intermediate-size", "64", "--num-attention-heads", "2", "--dropout", "0", "--init-range",
                "0.02", "--max-steps", "120", "--lr", "3e-3", "--max-length", "48", "--eval-every", "40"]) == 0
    record = json.loads((kadapter / "knowledge.json").read_text())
    best = record["best"]
    assert best["uas"] > best["baseline_uas"] + 0.2, best  # the grammar's trees, far above attaching to a neighbour
    assert [e["step"] for e in record["evaluations"]] == [40, 80, 120]
    common = ["--base-model", str(base), "--task", "ner", "--train", str(data / "ner/en.train.conll"), "--dev",
              str(data / "ner/en.dev.conll"), "--max-length", "48", "--max-steps", "30", "--batch-size", "16",
              "--lr", "5e-3", "--eval-every", "30"]
    task = tmp_path / "ner+syntax"
    assert cli(["train-task", *common, "--setup", "task_only", "--task", "ner+syntax", "--knowledge", str(kadapter),
                "--output", str(task)]) == 0
    assert json.loads((task / "task.json").read_text())["knowledge"] == {"syntax": str(kadapter)}
    reader = load_file(str(task / "knowledge" / "knowledge_reader.safetensors"))["linear.weight"]
    hidden = reader.shape[0]
    assert reader.shape == (hidden, 2 * hidden)
    assert not torch.equal(reader[:, :hidden], torch.eye(hidden)) and reader[:, hidden:].abs().sum() > 0  # it trained
    assert cli(["train-task", *common, "--setup", "full_ft", "--knowledge", str(kadapter),
                "--output", str(tmp_path / "ft")]) == 2  # the whole encoder under K-adapters: refused
    plain = tmp_path / "ner"
    assert cli(["train-task", *common, "--setup", "task_only", "--output", str(plain)]) == 0
    for directory, name in ((task, "with.json"), (plain, "without.json")):
        assert cli(["evaluate", "--base-model", str(base), "--setup", "task_only", "--task-dir", str(directory),
                    "--test", str(data / "ner/en.test.conll"), "--output", str(tmp_path / name), "--task", "ner",
                    "--lang", "en", "--seed", "1"]) == 0
    with_k, without = (json.loads((tmp_path / name).read_text()) for name in ("with.json", "without.json"))
    assert with_k["knowledge"] == {"syntax": str(kadapter)} and "knowledge" not in without
    assert "knowledge" in with_k["inputs"] and "knowledge" not in without["inputs"]
    inputs = run_inputs(Run("task_only", 1, task, None, tmp_path / "x.json"), {})
    assert inputs["knowledge"]["syntax"] == with_k["inputs"]["knowledge"]["syntax"]


def test_a_knowledge_reader_starts_as_the_head_without_it_and_trains_alone_with_the_head():
    """Reading a K-adapter changes no output until the reader trains (it starts as [I 0]); then only the reader,
    task adapter and head have gradients; stop_reading_knowledge restores the outputs; BERT's pooler is recomputed."""
    import transformers
    from madx.adapters.kadapter import knowledge_reader, read_knowledge, stop_reading_knowledge
    from tiny import tiny_config

    for model_type, auto in (("xlm-roberta", transformers.AutoModelForTokenClassification),
                             ("bert", transformers.AutoModelForSequenceClassification)):
        config = tiny_config(model_type)
        config.num_labels = 3
        model = auto.from_config(config).eval()
        ids, mask = batch()
        with torch.no_grad():
            plain = model(input_ids=ids, attention_mask=mask).logits
        madx.add_kadapter(model, "syntax", SMALL)
        madx.add_adapter(model, "task")
        madx.activate(model, "task")
        madx.train_adapters(model, "task")
        read_knowledge(model, ["syntax"])
        with torch.no_grad():
            torch.nn.init.normal_(kadapters(model)["syntax"].layers[-1].up.weight)  # an output far from zero
            assert torch.equal(model(input_ids=ids, attention_mask=mask).logits, plain)
        model(input_ids=ids, attention_mask=mask).logits.sum().backward()
        grads = {name.split(".")[1] if name.startswith(model.base_model_prefix) else name.split(".")[0]
                 for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
        assert "kadapters" not in grads and "knowledge_reader" in grads, grads
        assert all(not p.requires_grad for p in kadapters(model).parameters())
        with torch.no_grad():
            knowledge_reader(model).linear.weight.normal_(std=0.1)
            read = model(input_ids=ids, attention_mask=mask).logits
            assert not torch.allclose(read, plain)  # the head now reads the K-adapter (through the pooler on BERT)
            stop_reading_knowledge(model)
            assert torch.equal(model(input_ids=ids, attention_mask=mask).logits, plain)
