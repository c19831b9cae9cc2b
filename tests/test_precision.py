"""Half-precision compute: with the frozen base in bf16, the residual stream between layers stays bf16.

CUDA autocast runs layer_norm in fp32 and returns fp32; CPU autocast does not, so these tests put
CUDA's rule on the CPU (`cuda_layer_norm_rule`) to check what a GPU run computes.
"""

import numpy as np
import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend

import madx
from madx.adapters.model import madx_state, task_head, train_adapters
from madx.training.accelerator import cast_frozen
from madx.training.mlm import MaskedLMObjective, MLMBatches
from madx.training.task import predict
from test_mlm import Tokens, line_blocks
from tiny import ARCHS, perturb_adapter, tiny_model


@pytest.fixture
def cuda_layer_norm_rule(monkeypatch):
    """layer_norm under autocast computes in fp32 and returns fp32, as CUDA's autocast policy makes it."""
    original = torch.nn.functional.layer_norm

    def layer_norm(x, shape, weight=None, bias=None, eps=1e-5):
        if torch.is_autocast_enabled(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                return original(x.float(), shape, None if weight is None else weight.float(),
                                None if bias is None else bias.float(), eps)
        return original(x, shape, weight, bias, eps)

    monkeypatch.setattr(torch.nn.functional, "layer_norm", layer_norm)


def output_dtypes(model) -> dict:
    """Record the output dtype of the embeddings and of every adapted output block on the next forwards."""
    seen = {}
    state = madx_state(model)
    modules = {"embeddings": model.base_model.embeddings,
               **{f"layer {i} {kind}": block for (i, kind), block in state.outputs.items()}}
    for name, module in modules.items():
        module.register_forward_hook(lambda _m, _a, out, name=name: seen.__setitem__(name, out.dtype) and None)
    return seen


def language_adapter_model(model_type: str):
    model = tiny_model(model_type)
    madx.add_adapter(model, "xx", madx.LANGUAGE_ADAPTER)
    perturb_adapter(model, "xx")
    madx.activate(model, "xx")
    train_adapters(model, "xx")
    return model


def test_the_rule_is_in_force(cuda_layer_norm_rule):
    norm = torch.nn.LayerNorm(8).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert norm(torch.randn(2, 8, dtype=torch.bfloat16)).dtype == torch.float32  # what madx must not inherit


@pytest.mark.parametrize("model_type", ARCHS)
def test_language_adapter_training_keeps_a_bf16_stream(model_type, cuda_layer_norm_rule):
    torch.manual_seed(0)
    model = language_adapter_model(model_type)
    batch, _ = MLMBatches(line_blocks(16, 24, seed=2), Tokens(), batch_size=8, seed=0)(0)
    objective = MaskedLMObjective(model, padded=True)
    reference = objective(**batch)  # fp32 throughout
    cast_frozen(model, "bf16")
    seen = output_dtypes(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = objective(**batch)
    loss.backward()
    assert seen and set(seen.values()) == {torch.bfloat16}, {k: v for k, v in seen.items() if v != torch.bfloat16}
    assert loss.dtype == torch.float32  # the loss itself is summed in fp32
    torch.testing.assert_close(loss, reference, rtol=0.03, atol=0.0)
    trainable = [p for p in objective.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 and p.grad is not None and torch.isfinite(p.grad).all()
                             and p.grad.abs().sum() > 0 for p in trainable)


def test_an_fp32_base_under_autocast_is_unchanged(cuda_layer_norm_rule):
    """Only a half-precision base changes: fp32 weights keep the norm (and the stream) in fp32."""
    model = language_adapter_model("xlm-roberta")
    batch, _ = MLMBatches(line_blocks(8, 24, seed=3), Tokens(), batch_size=8, seed=0)(0)
    objective = MaskedLMObjective(model, padded=True)
    seen = output_dtypes(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        objective(**batch)
    assert set(seen.values()) == {torch.float32}


@pytest.mark.parametrize("cast", ["whole model", "frozen base"])
def test_half_precision_prediction_keeps_a_bf16_stream(cast, cuda_layer_norm_rule):
    """`madx evaluate` casts the whole Stack(lang, task) model to bf16; dev evaluation during task training
    has a bf16 base under fp32 adapters and head, and predicts under autocast."""
    model = tiny_model("xlm-roberta", head="token")
    for name, config in (("xx", madx.LANGUAGE_ADAPTER), ("ner", madx.TASK_ADAPTER)):
        madx.add_adapter(model, name, config)
        perturb_adapter(model, name)
    madx.activate(model, "xx", "ner")
    train_adapters(model, "ner")
    rng = np.random.default_rng(0)
    examples = []
    for _ in range(12):
        words = int(rng.integers(2, 10))
        examples.append({"input_ids": [0, *rng.integers(5, 120, size=words).tolist(), 2],
                         "first": [False] + [True] * words + [False], "n_words": words,
                         "labels": [-100] + [0] * words + [-100]})
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    full = predict(model, examples, names, pad_id=1)
    if cast == "whole model":
        model.to(torch.bfloat16)
    else:
        cast_frozen(model, "bf16")
        assert task_head(model).weight.dtype == torch.float32
    seen = output_dtypes(model)
    half = predict(model, examples, names, pad_id=1, mixed_precision="bf16")
    assert set(seen.values()) == {torch.bfloat16}
    assert [len(words) for words in half] == [e["n_words"] for e in examples]
    agree = [a == b for x, y in zip(full, half) for a, b in zip(x, y)]
    assert sum(agree) / len(agree) > 0.8, f"bf16 agrees with fp32 on {sum(agree)} of {len(agree)} words"


def test_compiles_to_one_graph_under_autocast(cuda_layer_norm_rule):
    """The norm's dtype switch is traced, not a graph break: one graph for every batch, bf16 base and all."""
    model = language_adapter_model("xlm-roberta")
    cast_frozen(model, "bf16")
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(MaskedLMObjective(model, padded=True), backend=counter, fullgraph=True)
    batches = MLMBatches(line_blocks(32, 24, seed=1), Tokens(), batch_size=8, seed=0)
    for step in range(3):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = compiled(**batches(step)[0])
        loss.backward()
        assert torch.isfinite(loss)
    assert counter.frame_count == 1, f"recompiled: {counter.frame_count} graphs"


@pytest.fixture
def fresh_accelerate_state():
    """accelerate keeps one process-wide state and refuses a second precision in it: start and end clean."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def test_bf16_language_adapter_training_learns(tiny_base, tmp_path, cuda_layer_norm_rule, fresh_accelerate_state):
    """The GPU recipe on the CPU: the base held in bf16, CUDA's layer_norm rule, accelerate's bf16 autocast and
    the training loop's own optimizer step. The MLM loss falls as it does in fp32."""
    from accelerate import Accelerator

    from madx.data import hub as hf
    from madx.data.corpus import load_blocks
    from madx.core.sources import Source
    from madx.training.accelerator import make_optimizer
    from madx.training.batching import shard
    from madx.core.settings import TrainSettings
    from madx.training.loop import optimizer_step

    data, base = tiny_base
    tokenizer, model = hf.load_tokenizer(str(base)), hf.load_mlm_model(str(base))
    madx.add_adapter(model, "qac", madx.LANGUAGE_ADAPTER)
    madx.activate(model, "qac")
    train_adapters(model, "qac")
    cast_frozen(model, "bf16")
    blocks = load_blocks(tokenizer, [Source(path=data / "corpora/qac.txt")], 48, tmp_path / "cache")
    settings = TrainSettings(batch_size=16, lr=5e-3, mixed_precision="bf16")
    accelerator = Accelerator(mixed_precision="bf16", cpu=True)
    assert accelerator.mixed_precision == "bf16"
    objective = MaskedLMObjective(model)
    params = [p for p in objective.parameters() if p.requires_grad]
    wrapped, optimizer = accelerator.prepare(objective, make_optimizer(params, settings, accelerator.device))
    wrapped.train()
    batches, losses = MLMBatches(blocks, tokenizer, settings.batch_size, seed=0), []
    seen = output_dtypes(model)
    for step in range(100):
        batch, n_predicted = batches(step)
        loss_sum, _ = optimizer_step(wrapped, shard(batch, 1, 0, 1), 1.0 / n_predicted, accelerator, settings,
                                     params, optimizer)
        losses.append(float(loss_sum) / n_predicted)
    assert set(seen.values()) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in params)
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < first - 0.3, (first, last)
