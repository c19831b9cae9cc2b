"""AdapterFusion: the maths against a hand computation, save/load, training, composition and bad input."""

import json
import re
import shutil

import pytest
import torch
from torch import nn

import madx
from madx.adapters.fusion import FusionLayer
from madx.adapters.modules import BottleneckAdapter
from tiny import flip_bytes, randomize, randomize_adapter, tiny_model

TASK = madx.AdapterConfig(reduction_factor=4)
BATCH = dict(input_ids=torch.tensor([[0, 5, 17, 99, 42, 8, 2, 1], [0, 33, 7, 2, 1, 1, 1, 1]]),
             attention_mask=torch.tensor([[1] * 8, [1, 1, 1, 1, 0, 0, 0, 0]]))


def with_adapters(*names, head="token", lang=None):
    model = tiny_model(head=head)
    if lang:
        madx.add_adapter(model, lang, madx.LANGUAGE_ADAPTER)
        randomize_adapter(model, lang, 99)
    for i, name in enumerate(names):
        madx.add_adapter(model, name, TASK)
        randomize_adapter(model, name, i)
    return model


def outputs(model, *setup):
    madx.activate(model, *setup)
    with torch.no_grad():
        out = model(**BATCH, output_hidden_states=True)
    return out.hidden_states[-1], out.logits


@pytest.mark.parametrize("preset", ["static", "dynamic"])
@pytest.mark.parametrize("query_before_ln, residual_before, value_before_softmax",
                         [(False, False, True), (True, True, False)])
def test_fusion_layer_matches_the_attention_written_out(preset, query_before_ln, residual_before, value_before_softmax):
    h, n = 8, 3
    config = madx.FusionConfig.preset(preset)
    config = madx.FusionConfig(**{**config.to_adapterhub(), "query_before_ln": query_before_ln,
                                  "residual_before": residual_before, "value_before_softmax": value_before_softmax})
    layer = FusionLayer(h, config, dropout_prob=0.0).eval()
    adapters = [BottleneckAdapter(h, TASK) for _ in range(n)]
    norm = nn.LayerNorm(h)
    randomize([layer, *adapters, norm], 3, scale=0.5)
    r, x = torch.randn(2, 5, h), torch.randn(2, 5, h)
    with torch.no_grad():
        got = layer(r, x, norm, adapters)
        expected = torch.empty_like(r)
        for b in range(2):
            for t in range(5):
                z = norm(r[b, t] + x[b, t])
                query = r[b, t] if query_before_ln else z
                ups = [a.adapter_up(a.adapter_down(z)) + (r[b, t] if residual_before else 0) for a in adapters]
                q = layer.query.weight @ query + layer.query.bias
                keys = [layer.key.weight @ u + layer.key.bias for u in ups]
                scores = torch.stack([torch.dot(q, k) for k in keys])
                weights = torch.exp(scores - scores.max()) / torch.exp(scores - scores.max()).sum()
                if config.value and value_before_softmax:
                    mixed = sum(w * (layer.value.weight @ u) for w, u in zip(weights, ups))
                elif config.value:
                    mixed = layer.value.weight @ sum(w * u for w, u in zip(weights, ups))
                else:
                    mixed = sum(w * u for w, u in zip(weights, ups))
                expected[b, t] = mixed if residual_before else mixed + r[b, t]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_a_fusion_of_one_adapter_is_that_adapter():
    """Softmax over one adapter is 1 and V starts as the identity (1e-6 off the diagonal): Fuse("a") computes
    what Stack("a") does, under a language adapter too."""
    model = with_adapters("a", lang="sw")
    madx.add_fusion(model, ["a"], "dynamic")
    for setup in (("a",), ("sw", "a")):
        fused = outputs(model, *setup[:-1], madx.Fuse(setup[-1]))
        plain = outputs(model, *setup)
        for got, want in zip(fused, plain):
            torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    madx.activate(model, "sw", madx.Fuse("a"))
    assert madx.active_adapters(model) == ("sw", madx.Fuse("a"))


def test_stack_and_arguments_name_the_same_setup():
    model = with_adapters("a", "b", lang="sw")
    madx.add_fusion(model, ["a", "b"])
    args = outputs(model, "sw", madx.Fuse("a", "b"))
    stack = outputs(model, madx.Stack("sw", madx.Fuse("a", "b")))
    torch.testing.assert_close(args, stack, atol=0, rtol=0)
    assert not torch.allclose(args[1], outputs(model, "sw", "a")[1])


@pytest.mark.parametrize("preset", ["static", "dynamic"])
def test_save_and_load_give_the_same_outputs(tmp_path, preset):
    model = with_adapters("a", "b", lang="sw")
    madx.add_fusion(model, ["a", "b"], preset)
    randomize(madx.adapters.fusion.fusion_modules(model, "a,b").values(), 5)
    before = outputs(model, "sw", madx.Fuse("a", "b"))
    for name in ("sw", "a", "b"):
        madx.save_adapter(model, name, tmp_path / name)
    madx.save_fusion(model, ["a", "b"], tmp_path / "fusion")
    meta = json.loads((tmp_path / "fusion" / "adapter_fusion_config.json").read_text())
    assert meta["adapter_names"] == ["a", "b"] and meta["name"] == "a,b"
    assert meta["config"] == madx.FusionConfig.preset(preset).to_adapterhub()

    fresh = tiny_model(head="token")
    fresh.load_state_dict(model.state_dict(), strict=False)  # the same base and head
    for name in ("sw", "a", "b"):
        madx.load_adapter(fresh, tmp_path / name)
    assert madx.load_fusion(fresh, tmp_path / "fusion") == "a,b"
    assert madx.fusion_config(fresh, "a,b") == madx.FusionConfig.preset(preset)
    after = outputs(fresh, "sw", madx.Fuse("a", "b"))
    torch.testing.assert_close(after, before, atol=0, rtol=0)


def test_training_changes_only_the_fusion_and_the_head_and_the_loss_goes_down():
    torch.manual_seed(0)
    model = with_adapters("a", "b", lang="sw")
    madx.add_fusion(model, ["a", "b"], "dynamic")
    madx.activate(model, "sw", madx.Fuse("a", "b"))
    madx.train_fusion(model, ["a", "b"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".adapter_fusion_layer.a,b." in n or n.startswith("classifier.") for n in trainable)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    # a learnable token task: the label is the token id modulo 5
    ids = torch.randint(3, 120, (32, 8))
    labels = ids % 5
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(40):
        loss = model(input_ids=ids, labels=labels).loss
        reg = madx.fusion_regularization_loss(model)
        assert reg is not None and reg.item() >= 0
        (loss + reg).backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5, losses
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable, changed - trainable


def test_static_fusion_has_no_value_matrix_and_no_regularization():
    model = with_adapters("a", "b")
    madx.add_fusion(model, ["a", "b"], "static")
    madx.train_fusion(model, ["a", "b"])
    assert madx.fusion_regularization_loss(model).item() == 0  # nothing to add to the loss
    assert not any(".adapter_fusion_layer." in n and ".value." in n for n, _ in model.named_parameters())
    assert any(".adapter_fusion_layer.a,b.key." in n for n, _ in model.named_parameters())


def test_remove_adapters_and_delete_adapter_undo_fusions():
    model = with_adapters("a", "b")
    untouched = tiny_model(head="token")
    untouched.load_state_dict({k: v for k, v in model.state_dict().items() if ".adapters." not in k})
    madx.add_fusion(model, ["a", "b"])
    count = madx.count_parameters(model)
    assert count.fusions["a,b"] == 3 * (3 * 32 * 32 + 2 * 32)  # 3 layers: query, key (with bias), value
    assert count.base == sum(p.numel() for p in untouched.parameters())
    madx.delete_adapter(model, "b")
    assert not any("adapter_fusion_layer" in n for n, _ in model.named_parameters())
    assert madx.adapters.model.madx_state(model).fusions == {}
    madx.add_adapter(model, "b", TASK)
    with pytest.raises(KeyError, match=r"no fusion Fuse\('a', 'b'\); add it with madx.add_fusion"):
        madx.activate(model, madx.Fuse("a", "b"))
    madx.add_fusion(model, ["a", "b"])
    madx.activate(model, madx.Fuse("a", "b"))
    madx.remove_adapters(model)
    assert model.state_dict().keys() == untouched.state_dict().keys()
    torch.testing.assert_close(model(**BATCH).logits, untouched(**BATCH).logits, atol=0, rtol=0)


def test_bad_fusions_are_refused_with_the_reason(tmp_path):
    model = with_adapters("a", "b")
    with pytest.raises(KeyError, match=r"no adapter named \['c'\]"):
        madx.add_fusion(model, ["a", "c"])
    madx.add_adapter(model, "c", madx.AdapterConfig(reduction_factor=4, leave_out=(2,)))
    with pytest.raises(madx.core.errors.InputError, match="placed differently"):
        madx.add_fusion(model, ["a", "c"])
    with pytest.raises(madx.core.errors.InputError, match="use one of"):
        madx.add_fusion(model, ["a", "b"], "fancy")
    with pytest.raises(madx.core.errors.InputError, match="unknown keys"):
        madx.add_fusion(model, ["a", "b"], {"keys": True})
    madx.add_fusion(model, ["a", "b"])
    madx.save_fusion(model, ["a", "b"], tmp_path / "fusion")

    wider = tiny_model(head="token", hidden_size=48)
    for name in ("a", "b"):
        madx.add_adapter(wider, name, TASK)
    with pytest.raises(madx.AdapterLoadError, match="hidden_size 32, the model has 48"):
        madx.load_fusion(wider, tmp_path / "fusion")
    only_a = with_adapters("a")
    with pytest.raises(madx.AdapterLoadError, match=r"no adapter \['b'\].*load those adapters first"):
        madx.load_fusion(only_a, tmp_path / "fusion")

    fresh = with_adapters("a", "b")
    weights = tmp_path / "fusion" / "model_adapter_fusion.safetensors"
    flip_bytes(weights)
    with pytest.raises(madx.AdapterLoadError, match="model_adapter_fusion.safetensors"):
        madx.load_fusion(fresh, tmp_path / "fusion")
    weights.unlink()
    with pytest.raises(madx.AdapterLoadError, match="no model_adapter_fusion.safetensors"):
        madx.load_fusion(fresh, tmp_path / "fusion")
    assert madx.adapters.model.madx_state(fresh).fusions == {}  # nothing half-loaded is left
    with pytest.raises(madx.AdapterLoadError, match="fusion directory not found"):
        madx.load_fusion(fresh, tmp_path / "nowhere")


def test_the_regularization_is_the_papers_term_exactly():
    """0.01 * ||I - V||^2 per layer, summed over the layers (3 here), for V set to a known matrix."""
    model = with_adapters("a", "b")
    madx.add_fusion(model, ["a", "b"], "dynamic")
    madx.train_fusion(model, ["a", "b"])
    layers = madx.adapters.fusion.fusion_modules(model, "a,b").values()
    with torch.no_grad():
        for i, layer in enumerate(layers):
            layer.value.weight.copy_(torch.eye(32) * (1 + i))  # I - V = -i * I: ||.||^2 = 32 i^2
    expected = 0.01 * sum(32 * i ** 2 for i in range(3))
    assert madx.fusion_regularization_loss(model).item() == pytest.approx(expected, rel=1e-6)


def test_a_fusion_first_in_the_stack_applies_its_first_adapters_invertible_adapter():
    """As AdapterHub: the invertible adapter of a stack that starts with Fuse(a, b) is a's."""
    model = tiny_model(head="token")
    for name in ("a", "b"):
        madx.add_adapter(model, name, madx.LANGUAGE_ADAPTER)
        randomize_adapter(model, name, len(name))
    madx.add_fusion(model, ["a", "b"])
    madx.activate(model, madx.Fuse("a", "b"))
    state = madx.adapters.model.madx_state(model)
    assert state.first_invertible() is state.invertible["a"]
    with pytest.raises(ValueError, match="adapter names repeat"):
        madx.activate(model, "a", madx.Fuse("a", "b"))


def test_a_fusion_is_named_by_its_adapters_every_way():
    model = with_adapters("a", "b")
    assert madx.add_fusion(model, "a,b") == "a,b"  # AdapterHub's name for it
    assert madx.fusion_config(model, ["a", "b"]) == madx.fusion_config(model, madx.Fuse("a", "b"))
    madx.delete_fusion(model, "a,b")
    assert madx.adapters.model.madx_state(model).fusions == {}


def test_the_presets_are_named_once_for_the_config_and_the_cli():
    from madx.adapters.fusion import PRESETS
    from madx.core.setups import DEFAULT_FUSION, FUSION_PRESETS
    from madx.experiment.schema import config_schema

    assert tuple(PRESETS) == FUSION_PRESETS and DEFAULT_FUSION in FUSION_PRESETS
    schema = config_schema()["properties"]["tasks"]["additionalProperties"]["properties"]["fusion"]
    assert tuple(schema["enum"]) == FUSION_PRESETS


def test_a_fusion_whose_weights_do_not_match_loads_nothing(tmp_path):
    """The weights are checked after the fusion layers exist: a renamed key undoes them again."""
    from safetensors.torch import load_file, save_file

    model = with_adapters("a", "b")
    madx.add_fusion(model, ["a", "b"])
    madx.save_fusion(model, ["a", "b"], tmp_path / "fusion")
    weights = tmp_path / "fusion" / "model_adapter_fusion.safetensors"
    tensors = load_file(str(weights))
    key = next(k for k in tensors if ".query.weight" in k)
    tensors[key.replace(".query.", ".queries.")] = tensors.pop(key)
    save_file(tensors, str(weights))
    (tmp_path / "fusion" / "madx_checksums.json").unlink()  # an edit by hand, not corruption
    fresh = with_adapters("a", "b")
    with pytest.raises(madx.AdapterLoadError, match="model_adapter_fusion.safetensors: does not match"):
        madx.load_fusion(fresh, tmp_path / "fusion")
    assert madx.adapters.model.madx_state(fresh).fusions == {}
    assert not any("adapter_fusion_layer" in n for n, _ in fresh.named_parameters())


def test_train_task_fuses_two_trained_task_adapters_and_evaluate_reads_the_fusion(tiny_base, tmp_path, capsys):
    """The workflow's commands: two madx task trainings (ner, classification) on en's language adapter, then
    `train-task --setup madx_fusion --fuse` for classification; its loss goes down, its directory stands alone
    (fusion files, head, a copy of each fused adapter) and `evaluate --setup madx_fusion` stacks Fuse under the
    language adapter and scores above the test set's majority baseline."""
    from madx.cli import main as cli

    data, base = tiny_base
    common = ["--base-model", str(base), "--max-length", "48", "--batch-size", "32", "--lr", "5e-3", "--lang", "en"]
    assert cli(["train-lang", "--base-model", str(base), "--lang", "en", "--corpus", str(data / "corpora/en.txt"),
                "--output", str(tmp_path / "la"), "--max-steps", "10", "--seq-len", "48", "--batch-size", "16"]) == 0
    kind = {split: str(data / f"classification/en.{split}.jsonl") for split in ("train", "dev", "test")}
    for task, task_type, train, dev, steps in (
            ("ner", "ner", str(data / "ner/en.train.conll"), str(data / "ner/en.dev.conll"), 40),
            ("kind", "classification", kind["train"], kind["dev"], 150)):
        assert cli(["train-task", *common, "--task", task, "--task-type", task_type, "--setup", "madx",
                    "--lang-adapter", str(tmp_path / "la"), "--train", train, "--dev", dev, "--output",
                    str(tmp_path / task), "--max-steps", str(steps), "--eval-every", str(steps)]) == 0
    fusion = tmp_path / "fusion"
    fuse_args = ["train-task", *common, "--task", "kind", "--task-type", "classification", "--train", kind["train"],
                 "--dev", kind["dev"], "--lang-adapter", str(tmp_path / "la"), "--output", str(fusion)]
    kind_dir, ner_dir = str(tmp_path / "kind"), str(tmp_path / "ner")
    shutil.copytree(tmp_path / "la", tmp_path / "other_la")  # not the one the task adapters were trained over
    other_la = [a if a != str(tmp_path / "la") else str(tmp_path / "other_la") for a in fuse_args]
    for args, message in (
            ([*fuse_args, "--setup", "madx", "--fuse", kind_dir], "fuses no adapters"),
            ([*fuse_args, "--setup", "madx_fusion"], "fuses trained task adapters: give their directories"),
            ([*fuse_args, "--setup", "madx_fusion", "--fuse", kind_dir, "--init-from", kind_dir], "no --init-from"),
            ([*fuse_args, "--setup", "madx_fusion", "--fuse", kind_dir, kind_dir], "more than once"),
            ([*other_la, "--setup", "madx_fusion", "--fuse", kind_dir, ner_dir], "trained over the language adapter"),
            ([*fuse_args, "--setup", "madx_fusion", "--fuse", ner_dir, kind_dir],  # the first's head is its own
             "--fuse's first \\(the task's own\\) training .*: a ner task")):
        assert cli(args) == 2
        assert re.search(message, capsys.readouterr().err), message
    assert not fusion.exists()  # the head of --fuse's first (ner's) does not fit: refused before training
    assert cli([*fuse_args, "--setup", "madx_fusion", "--fuse", str(tmp_path / "kind"), str(tmp_path / "ner"),
                "--max-steps", "60", "--eval-every", "30", "--log-every", "5"]) == 0
    losses = [json.loads(line)["loss"] for line in (fusion / "train_log.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses
    config = json.loads((fusion / "adapter_fusion_config.json").read_text())
    assert config["adapter_names"] == ["kind", "ner"] and config["config"]["value"] is True
    assert {p.name for p in (fusion / "adapters").iterdir()} == {"kind", "ner"}
    assert cli(["inspect", str(fusion)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["adapter_names"] == ["kind", "ner"] and shown["checksums"] == "verified" and shown["parameters"] > 0
    assert json.loads((fusion / "task.json").read_text())["fuse"] == [str(tmp_path / "kind"), str(tmp_path / "ner")]
    card = (fusion / "README.md").read_text()  # its model card: what it is, what it fuses, how to load it
    assert card.startswith("---\n") and "# kind (classification), madx setup madx_fusion" in card
    assert "An AdapterFusion of task adapters and a head for" in card
    assert f"| fused | `{tmp_path / 'kind'}`, `{tmp_path / 'ner'}` (dynamic) |" in card
    assert "model.load_adapter_fusion(" in card and "| result | " in card and "accuracy on the dev set" in card

    out = tmp_path / "eval.json"
    assert cli(["evaluate", "--base-model", str(base), "--setup", "madx_fusion", "--task-dir", str(fusion),
                "--lang-adapter", str(tmp_path / "la"), "--test", kind["test"], "--output", str(out), "--task", "kind",
                "--lang", "en"]) == 0
    result = json.loads(out.read_text())
    assert result["stack"] == ["en", "Fuse('kind', 'ner')"] and result["fused"] == ["kind", "ner"]
    assert result["fused_adapters"] == [str(fusion / "adapters" / "kind"), str(fusion / "adapters" / "ner")]
    assert result["accuracy"] > result["baselines"]["majority"] + 0.1, result
