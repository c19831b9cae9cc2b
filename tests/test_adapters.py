"""Adapter maths, stacking, freezing and counting on tiny models of every supported architecture."""

import pytest
import torch
import transformers
from torch import nn

import madx
from madx.adapters.modules import NICEInvertibleAdapter
from tiny import ARCHS, perturb_adapter, tiny_model

VARIANTS = {
    "pfeiffer": madx.AdapterConfig(),
    "pfeiffer-gelu-rf4": madx.AdapterConfig(reduction_factor=4, non_linearity="gelu"),
    "madx-lang": madx.AdapterConfig(reduction_factor=2, invertible=True),
    "madx2-leave-last": madx.AdapterConfig(reduction_factor=2, invertible=True, leave_out=(2,)),
    "houlsby-swish": madx.AdapterConfig(architecture="houlsby", non_linearity="swish"),
    "houlsby-inv-gelu": madx.AdapterConfig(architecture="houlsby", invertible=True, inv_reduction_factor=4,
                                           non_linearity="gelu"),
}
IDS = torch.tensor([[2, 5, 17, 99, 42, 8, 3, 1], [2, 33, 7, 3, 1, 1, 1, 1]])
MASK = torch.tensor([[1] * 8, [1, 1, 1, 1, 0, 0, 0, 0]])


def logits(model):
    with torch.no_grad():
        return model(input_ids=IDS, attention_mask=MASK).logits


@pytest.mark.parametrize("model_type", ARCHS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_identity_at_init(model_type, variant):
    model = tiny_model(model_type)
    before = logits(model)
    madx.add_adapter(model, "a", VARIANTS[variant])
    madx.add_adapter(model, "b", madx.TASK_ADAPTER)
    madx.activate(model, "a", "b")
    assert torch.equal(logits(model), before)
    perturb_adapter(model, "a")
    assert not torch.allclose(logits(model), before, atol=1e-3)  # the adapter is really in the forward
    madx.activate(model)
    assert torch.equal(logits(model), before)  # nothing active: the base model, exactly


def test_nice_inverse_is_exact():
    config = madx.AdapterConfig(invertible=True, non_linearity="gelu")
    inv = NICEInvertibleAdapter(33, config).double()  # odd width: the split is uneven
    for p in inv.parameters():
        nn.init.normal_(p, std=0.5)
    x = torch.randn(4, 7, 33, dtype=torch.float64)
    y = inv(x)
    assert (y - x).abs().max() > 0.1
    assert (inv.inverse(y) - x).abs().max() < 1e-12
    assert (inv(inv.inverse(x)) - x).abs().max() < 1e-12


def _layer0_reference(model, stack, x, arch):
    """AdapterHub's formulas for layer 0's FFN output block, written out by hand from the architecture's
    definition (not from madx's own flags): seq_bn (Pfeiffer) has original_ln_before=True, so each adapter reads
    LN(r + x); double_seq_bn (Houlsby) has original_ln_before=False, so it reads r. A(z) = U(relu(D(z)))."""
    layer = model.base_model.encoder.layer[0]
    out = layer.output
    h = layer.intermediate(x)
    r = out.dense(h)
    for name in stack:
        a = out.adapters[name]
        z = out.LayerNorm(r + x) if arch == "pfeiffer" else r
        down, up = a.adapter_down[0], a.adapter_up
        r = torch.nn.functional.linear(torch.relu(torch.nn.functional.linear(z, down.weight, down.bias)), up.weight,
                                       up.bias) + r
    return out.LayerNorm(r + x)


@pytest.mark.parametrize("arch", ["pfeiffer", "houlsby"])
def test_stack_matches_adapterhub_formula(arch):
    model = tiny_model("xlm-roberta")
    madx.add_adapter(model, "la", madx.AdapterConfig(architecture=arch, reduction_factor=2))
    madx.add_adapter(model, "ta", madx.AdapterConfig(architecture=arch, reduction_factor=4))
    perturb_adapter(model, "la")
    perturb_adapter(model, "ta")
    x = torch.randn(2, 5, 32)
    h = model.base_model.encoder.layer[0].intermediate(x)
    for stack in (("la",), ("la", "ta"), ("ta", "la")):
        madx.activate(model, *stack)
        got = model.base_model.encoder.layer[0].output(h, x)
        torch.testing.assert_close(got, _layer0_reference(model, stack, x, arch), rtol=0, atol=1e-6)


def test_invertible_adapter_of_first_adapter_only():
    model = tiny_model("xlm-roberta")
    madx.add_adapter(model, "la", madx.LANGUAGE_ADAPTER)
    madx.add_adapter(model, "ta", madx.TASK_ADAPTER)
    perturb_adapter(model, "la")
    madx.activate(model, "la", "ta")
    inv = model.base_model.invertible_adapters["la"]
    madx.activate(model)
    plain = model.base_model.embeddings(input_ids=IDS)
    madx.activate(model, "la", "ta")
    torch.testing.assert_close(model.base_model.embeddings(input_ids=IDS), inv(plain), rtol=0, atol=0)
    madx.activate(model, "ta", "la")  # a task adapter first: no invertible adapter anywhere
    torch.testing.assert_close(model.base_model.embeddings(input_ids=IDS), plain, rtol=0, atol=0)
    # the inverse sits just before the output embeddings
    madx.activate(model, "la")
    seen = {}
    hook = model.get_output_embeddings().register_forward_hook(lambda m, a, o: seen.update(x=a[0]))
    with torch.no_grad():
        hidden = model(input_ids=IDS, output_hidden_states=True).hidden_states[-1]
        head = model.lm_head
        transformed = head.layer_norm(transformers.activations.gelu(head.dense(hidden)))
    hook.remove()
    torch.testing.assert_close(seen["x"], inv.inverse(transformed), rtol=0, atol=1e-6)


def _head_by_hand(model, hidden):
    """Each MLM head written out with functional ops (no module call, so no madx hook runs): the transformed
    hidden states, and the vocabulary projection's weight and bias."""
    F = torch.nn.functional

    def transform(dense, norm):
        x = F.gelu(F.linear(hidden, dense.weight, dense.bias))
        return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)

    if getattr(model, "lm_predictions", None) is not None:  # DeBERTa-v2 legacy=False
        head = model.lm_predictions.lm_head
        return transform(head.dense, head.LayerNorm), model.base_model.embeddings.word_embeddings.weight, head.bias
    if getattr(model, "lm_head", None) is not None:  # RoBERTa, XLM-R
        head = model.lm_head
        return transform(head.dense, head.layer_norm), head.decoder.weight, head.decoder.bias
    head = model.cls.predictions  # BERT, DeBERTa-v2 legacy
    return transform(head.transform.dense, head.transform.LayerNorm), head.decoder.weight, head.decoder.bias


@pytest.mark.parametrize("model_type", ARCHS)
def test_inverse_right_before_the_vocabulary_projection(model_type):
    """logits = inverse(head transform(h)) @ E.T + b, for every MLM head (DeBERTa-v2's legacy=False included)."""
    model = tiny_model(model_type)
    madx.add_adapter(model, "la", madx.LANGUAGE_ADAPTER)
    perturb_adapter(model, "la")
    madx.activate(model, "la")
    inv = model.base_model.invertible_adapters["la"]
    with torch.no_grad():
        hidden = model.base_model(input_ids=IDS, attention_mask=MASK).last_hidden_state
        transformed, weight, bias = _head_by_hand(model, hidden)
        expected = inv.inverse(transformed) @ weight.T + bias
        assert not torch.allclose(inv.inverse(transformed), transformed, atol=1e-3)  # the inverse does something
    torch.testing.assert_close(logits(model), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("model_type", ARCHS)
def test_remove_adapters_restores_the_untouched_model(model_type):
    untouched = tiny_model(model_type)
    model = tiny_model(model_type)
    model.load_state_dict(untouched.state_dict())
    madx.add_adapter(model, "la", madx.LANGUAGE_ADAPTER)
    madx.add_adapter(model, "ta", madx.AdapterConfig(architecture="houlsby"))
    perturb_adapter(model, "la")
    perturb_adapter(model, "ta")
    madx.activate(model, "la", "ta")
    assert not torch.allclose(logits(model), logits(untouched), atol=1e-3)
    madx.remove_adapters(model)
    assert list(model.state_dict()) == list(untouched.state_dict())
    assert all(torch.equal(v, untouched.state_dict()[k]) for k, v in model.state_dict().items())
    assert [type(m) for m in model.modules()] == [type(m) for m in untouched.modules()]
    assert torch.equal(logits(model), logits(untouched))
    madx.add_adapter(model, "la", madx.LANGUAGE_ADAPTER)  # and it can be adapted again, from scratch
    perturb_adapter(model, "la")
    madx.activate(model, "la")
    assert not torch.allclose(logits(model), logits(untouched), atol=1e-3)


@pytest.mark.parametrize("model_type", ARCHS)
def test_save_load_round_trip(tmp_path, model_type):
    model = tiny_model(model_type)
    madx.add_adapter(model, "sw", madx.AdapterConfig(reduction_factor=2, invertible=True, leave_out=(1,)))
    madx.add_adapter(model, "ner", madx.AdapterConfig(architecture="houlsby", reduction_factor=8))
    perturb_adapter(model, "sw")
    perturb_adapter(model, "ner")
    madx.activate(model, "sw", "ner")
    expected = logits(model)
    madx.save_adapter(model, "sw", tmp_path / "sw")
    madx.save_adapter(model, "ner", tmp_path / "ner")
    assert sorted(p.name for p in (tmp_path / "sw").iterdir()) == ["adapter.safetensors", "adapter_config.json",
                                                                      "madx_checksums.json"]

    fresh = tiny_model(model_type)
    fresh.load_state_dict({k: v for k, v in model.state_dict().items() if ".adapters." not in k
                           and "invertible_adapters" not in k})
    assert madx.load_adapter(fresh, tmp_path / "sw", name="xx") == "xx"
    assert madx.load_adapter(fresh, tmp_path / "ner") == "ner"
    assert madx.adapter_config(fresh, "xx") == madx.adapter_config(model, "sw")
    madx.activate(fresh, "xx", "ner")
    assert torch.equal(logits(fresh), expected)


def _rewrite_keys(directory, rename, legacy=False):
    from safetensors.torch import load_file, save_file
    tensors = load_file(directory / "adapter.safetensors")
    tensors = {rename(k): v for k, v in tensors.items()}
    (directory / "adapter.safetensors").unlink()
    (directory / "madx_checksums.json").unlink()  # a directory another tool rewrote: madx's checksums are gone
    if legacy:
        torch.save(tensors, directory / "pytorch_adapter.bin")
    else:
        save_file(tensors, directory / "adapter.safetensors")


@pytest.mark.parametrize("prefix,legacy", [("", False), ("bert.", False), ("model.roberta.", True)])
def test_load_any_prefix_and_legacy_bin(tmp_path, prefix, legacy):
    model = tiny_model("xlm-roberta")
    madx.add_adapter(model, "sw", madx.LANGUAGE_ADAPTER)
    perturb_adapter(model, "sw")
    madx.activate(model, "sw")
    expected = logits(model)
    madx.save_adapter(model, "sw", tmp_path / "sw")
    _rewrite_keys(tmp_path / "sw", lambda k: prefix + k.removeprefix("roberta."), legacy)
    fresh = tiny_model("xlm-roberta")
    fresh.load_state_dict(model.state_dict(), strict=False)
    madx.activate(fresh, madx.load_adapter(fresh, tmp_path / "sw"))
    assert torch.equal(logits(fresh), expected)


def test_train_adapters_freezes_exactly_the_base():
    model = tiny_model("xlm-roberta", head="token").train()
    madx.add_adapter(model, "sw", madx.LANGUAGE_ADAPTER)
    madx.add_adapter(model, "ner", madx.TASK_ADAPTER)
    madx.activate(model, "sw", "ner")
    madx.train_adapters(model, "ner")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".adapters.ner." in n or n.startswith("classifier.") for n in trainable)
    assert any(n.startswith("classifier.") for n in trainable)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    labels = torch.randint(0, 5, IDS.shape)
    for _ in range(2):
        loss = model(input_ids=IDS, attention_mask=MASK, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed <= trainable, f"frozen weights changed: {sorted(changed - trainable)}"
    # every layer's task adapter and the head moved (up biases always get a gradient; weights may sit behind a dead ReLU)
    assert {n for n in trainable if n.endswith("adapter_up.bias") or n.startswith("classifier.")} <= changed
    assert len(changed) >= len(trainable) // 2

    madx.train_adapters(model, "sw")  # a language adapter: its invertible adapter trains too
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("roberta.invertible_adapters.sw.") for n in trainable)


def test_count_parameters_xlmr_base_language_adapter():
    # XLM-R base shape, built in memory (on the meta device), never downloaded
    config = transformers.XLMRobertaConfig(vocab_size=250_002, max_position_embeddings=514, type_vocab_size=1)
    with torch.device("meta"):
        model = transformers.XLMRobertaForMaskedLM(config)
    madx.add_adapter(model, "sw", madx.LANGUAGE_ADAPTER)
    madx.train_adapters(model, "sw")
    count = madx.count_parameters(model)
    assert count.trainable == count.adapters["sw"]
    # 12 x (768*384 + 384 + 384*768 + 768) bottleneck + 2 x (384*192 + 192 + 192*384 + 384) NICE
    assert count.adapters["sw"] == 12 * 590_976 + 2 * 148_032 == 7_387_776
    assert 270e6 < count.base < 280e6
    assert 0.02 < count.adapters["sw"] / count.base < 0.035  # about 3% of the base, as in the paper
    assert count.total == count.base + count.adapters["sw"]
    assert str(count) == ("trainable 7,387,776 of 285,682,962 (2.59%); adapter sw 7,387,776 (2.65% of the base)")


def test_unsupported_model_lists_supported():
    config = transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50)
    with pytest.raises(madx.UnsupportedModelError, match="bert, roberta, xlm-roberta, deberta-v2"):
        madx.add_adapter(transformers.GPT2Model(config), "x")


@pytest.mark.parametrize("bad,match", [
    (dict(architecture="lora"), "architecture"),
    (dict(non_linearity="tanh"), "non_linearity"),
    (dict(reduction_factor=0), "reduction_factor"),
    (dict(leave_out=3), "leave_out"),
])
def test_config_errors(bad, match):
    with pytest.raises(madx.AdapterConfigError, match=match):
        madx.AdapterConfig(**bad)


def test_api_errors():
    model = tiny_model("bert")
    with pytest.raises(ValueError, match="leave_out"):
        madx.add_adapter(model, "x", madx.AdapterConfig(leave_out=(7,)))
    madx.add_adapter(model, "x")
    with pytest.raises(ValueError, match="already exists"):
        madx.add_adapter(model, "x")
    with pytest.raises(KeyError, match="no adapter named"):
        madx.activate(model, "x", "y")
    with pytest.raises(ValueError, match="name"):
        madx.add_adapter(model, "a.b")


def test_gradient_checkpointing_gives_same_gradients():
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = tiny_model("xlm-roberta").train()
        madx.add_adapter(model, "sw", madx.AdapterConfig(reduction_factor=2))  # no invertible: no grad at input
        perturb_adapter(model, "sw")
        madx.activate(model, "sw")
        madx.train_adapters(model, "sw")
        if checkpointing:
            model.gradient_checkpointing_enable()
        model(input_ids=IDS, labels=IDS).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-5, atol=1e-6)


def test_torch_compile_runs_and_matches_eager():
    model = tiny_model("xlm-roberta")
    madx.add_adapter(model, "sw", madx.LANGUAGE_ADAPTER)
    madx.add_adapter(model, "ner", madx.TASK_ADAPTER)
    perturb_adapter(model, "sw")
    perturb_adapter(model, "ner")
    madx.activate(model, "sw", "ner")
    expected = logits(model)
    compiled = torch.compile(model, backend="aot_eager")
    with torch.no_grad():
        got = compiled(input_ids=IDS, attention_mask=MASK).logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
