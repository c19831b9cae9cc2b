"""MLM masking and the sparse-head objective: exact counts, the dense loss, one static graph under torch.compile."""

import numpy as np
import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend

import madx
from madx.adapters.model import train_adapters
from madx.core.tensors import IGNORE
from madx.training.mlm import MaskedLMObjective, MLMBatches, mask_tokens, predictions_per_sequence
from tiny import ARCHS, perturb_adapter, tiny_model


class Tokens:
    """The tokenizer facts masking needs: specials 0-3 (pad 1), mask 4, vocabulary 120."""

    all_special_ids = [0, 1, 2, 3]
    mask_token_id = 4
    pad_token_id = 1

    def __len__(self):
        return 120


def line_blocks(n: int, width: int, seed: int) -> np.ndarray:
    """Padded line-by-line blocks: <s> words </s> <pad>..., lengths from 3 to `width`."""
    rng = np.random.default_rng(seed)
    blocks = np.full((n, width), 1, dtype=np.int32)
    for row in blocks:
        length = int(rng.integers(3, width + 1))
        row[0], row[1 : length - 1], row[length - 1] = 0, rng.integers(5, 120, size=length - 2), 2
    return blocks


def test_every_sequence_predicts_its_exact_share():
    ids = torch.from_numpy(line_blocks(64, 40, seed=1)).long()
    masked, positions, targets = mask_tokens(ids, Tokens(), torch.Generator().manual_seed(0))
    assert positions.shape == targets.shape == (64, predictions_per_sequence(40)) == (64, 6)
    real = (ids > 3).sum(1)
    valid = targets != IGNORE
    assert valid.sum(1).tolist() == [max(1, round(0.15 * n)) for n in real.tolist()]
    rows = torch.arange(64)[:, None].expand_as(positions)
    assert torch.equal(targets[valid], ids[rows[valid], positions[valid]])  # the original token is the target
    assert (ids[rows[valid], positions[valid]] > 3).all()  # never a special token or padding
    picked = torch.zeros_like(ids, dtype=torch.bool)
    picked[rows[valid], positions[valid]] = True
    assert int(picked.sum()) == int(valid.sum())  # no position drawn twice
    assert torch.equal(masked[~picked], ids[~picked])  # nothing else changes
    again = mask_tokens(ids, Tokens(), torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip((masked, positions, targets), again))


def test_predicted_tokens_are_80_percent_mask_10_random_10_kept():
    ids = torch.randint(5, 120, (512, 128))
    masked, positions, targets = mask_tokens(ids, Tokens(), torch.Generator().manual_seed(3))
    shown = masked.gather(1, positions).flatten()
    n = shown.numel()  # 512 x 19 = 9728 predicted tokens
    as_mask = (shown == 4).float().mean().item()
    kept = (shown == targets.flatten()).float().mean().item()  # 10% kept, plus random draws that hit the token
    assert abs(as_mask - 0.8) < 4 * (0.8 * 0.2 / n) ** 0.5, as_mask
    assert abs(kept - (0.1 + 0.1 / 120)) < 4 * (0.1 * 0.9 / n) ** 0.5, kept


@pytest.mark.parametrize("model_type", sorted(ARCHS))
@pytest.mark.parametrize("padded", [False, True])
def test_sparse_loss_equals_the_dense_head_loss(model_type, padded):
    """Summed over predicted tokens, the objective equals Hugging Face's full-vocabulary MLM loss."""
    model = tiny_model(model_type)
    madx.add_adapter(model, "xx", madx.LANGUAGE_ADAPTER)
    perturb_adapter(model, "xx")
    madx.activate(model, "xx")
    tokens = Tokens()
    ids = torch.from_numpy(line_blocks(6, 24, seed=2)).long() if padded else torch.randint(5, 120, (6, 24))
    masked, positions, targets = mask_tokens(ids, tokens, torch.Generator().manual_seed(1))
    attention_mask = (ids != tokens.pad_token_id).long()
    labels = torch.full_like(ids, IGNORE)
    valid = targets != IGNORE
    labels[torch.arange(6)[:, None].expand_as(positions)[valid], positions[valid]] = targets[valid]
    with torch.no_grad():
        dense = model(input_ids=masked, attention_mask=attention_mask, labels=labels).loss * valid.sum()
        sparse = MaskedLMObjective(model, padded=padded)(masked, positions, targets, attention_mask=attention_mask)
    torch.testing.assert_close(sparse, dense, rtol=1e-5, atol=1e-5)


def test_compiled_objective_is_one_graph_for_every_batch():
    """torch.compile traces the MLM step once, with no graph break: masking changes values, never shapes."""
    torch.manual_seed(0)
    model = tiny_model("xlm-roberta")
    madx.add_adapter(model, "xx", madx.LANGUAGE_ADAPTER)
    perturb_adapter(model, "xx")  # past the zero init, so every adapter weight gets a gradient
    madx.activate(model, "xx")
    train_adapters(model, "xx")
    objective = MaskedLMObjective(model, padded=True)
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(objective, backend=counter, fullgraph=True)  # fullgraph: a graph break is an error
    batches = MLMBatches(line_blocks(64, 32, seed=4), Tokens(), batch_size=8, seed=0)
    counts = set()
    for step in range(4):
        batch, n_predicted = batches(step)
        counts.add(n_predicted)
        loss = compiled(**batch)
        torch.testing.assert_close(loss, objective(**batch), rtol=1e-5, atol=1e-5)
        loss.backward()
    assert len(counts) > 1  # the number of predicted tokens did change
    assert counter.frame_count == 1, f"recompiled: {counter.frame_count} graphs"
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in objective.parameters() if p.requires_grad)


def test_heldout_split_sizes():
    from madx.training.mlm import split_heldout

    for n, held in ((99, 0), (100, 1), (6000, 60), (250_000, 2000)):
        train, heldout = split_heldout(np.arange(n)[:, None])
        assert (len(train), len(heldout)) == (n - held, held)
        assert np.array_equal(np.concatenate([train, heldout]), np.arange(n)[:, None])  # disjoint, nothing lost


def test_heldout_loss_is_the_mean_over_predicted_tokens_with_fixed_masks():
    """The held-out loss by hand: every block masked once from one seeded generator, the summed loss over the
    predicted tokens divided by their count; the same masks for any model, so the adapter and the base compare."""
    from madx.training.mlm import heldout_loss

    model = tiny_model("xlm-roberta")
    madx.add_adapter(model, "xx", madx.LANGUAGE_ADAPTER)
    perturb_adapter(model, "xx")
    madx.activate(model, "xx")
    tokens, blocks = Tokens(), line_blocks(10, 24, seed=3)
    objective = MaskedLMObjective(model, padded=True)
    got = heldout_loss(objective, blocks, tokens, batch_size=4, seed=5)
    generator, total, count = torch.Generator().manual_seed(5), 0.0, 0
    with torch.no_grad():
        for start in range(0, 10, 4):
            ids = torch.from_numpy(blocks[start : start + 4]).long()
            masked, positions, targets = mask_tokens(ids, tokens, generator)
            total += float(objective(masked, positions, targets, attention_mask=(ids != 1).long()))
            count += int((targets != IGNORE).sum())
    assert got == pytest.approx(total / count, rel=1e-6)
    madx.activate(model)
    base = heldout_loss(objective, blocks, tokens, batch_size=4, seed=5)
    assert base != pytest.approx(got, rel=1e-3)  # the adapter changes the loss on the very same masks
    assert heldout_loss(objective, blocks, tokens, batch_size=4, seed=5) == base  # and it is deterministic
