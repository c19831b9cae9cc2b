"""Average: the weighted mean of adapters' outputs in every layer and of their invertible adapters on the
embeddings, against a hand computation; its weights, its composition with a task adapter, and bad input."""

import dataclasses

import pytest
import torch

import madx
from madx.adapters.model import madx_state
from madx.core.errors import InputError
from tiny import randomize_adapter, tiny_model

BATCH = dict(input_ids=torch.tensor([[0, 5, 17, 99, 42, 8, 2, 1], [0, 33, 7, 2, 1, 1, 1, 1]]),
             attention_mask=torch.tensor([[1] * 8, [1, 1, 1, 1, 0, 0, 0, 0]]))
TASK = madx.AdapterConfig(reduction_factor=4)


def languages(*names, head="token", leave_out=None):
    """A tiny model with a randomized language adapter (invertible) per name; `leave_out`: {name: layers}."""
    model = tiny_model(head=head)
    for i, name in enumerate(names):
        config = dataclasses.replace(madx.LANGUAGE_ADAPTER, leave_out=tuple((leave_out or {}).get(name, ())))
        madx.add_adapter(model, name, config)
        randomize_adapter(model, name, 10 + i)
    return model


def hidden(model, *setup):
    madx.activate(model, *setup)
    with torch.no_grad():
        return model(**BATCH, output_hidden_states=True).hidden_states


def test_an_average_of_one_adapter_is_that_adapter():
    model = languages("hi")
    for got, expected in zip(hidden(model, madx.Average("hi")), hidden(model, "hi")):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_a_weight_of_zero_drops_the_adapter():
    model = languages("hi", "ar")
    for got, expected in zip(hidden(model, madx.Average("hi", "ar", weights=[1, 0])), hidden(model, "hi")):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("weights", [None, [3, 1]])
def test_each_layer_is_the_weighted_mean_written_out(weights):
    """One wrapped layer: LN(Σ w_i (U_i(D_i(LN(r + x))) + r) + x), every term by hand."""
    model = languages("hi", "ar")
    average = madx.Average("hi", "ar", weights=weights)
    w = [0.5, 0.5] if weights is None else [0.75, 0.25]
    madx.activate(model, average)
    wrapper = madx_state(model).outputs[(1, "output")].eval()
    h, x = torch.randn(2, 5, wrapper.dense.in_features), torch.randn(2, 5, wrapper.dense.out_features)
    with torch.no_grad():
        got = wrapper(h, x)
        r = wrapper.dense(h)
        z = wrapper.LayerNorm(r + x)
        ups = [wrapper.adapters[n].adapter_up(wrapper.adapters[n].adapter_down(z)) for n in ("hi", "ar")]
        expected = wrapper.LayerNorm(w[0] * (ups[0] + r) + w[1] * (ups[1] + r) + x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_a_layer_that_leaves_an_adapter_out_averages_the_others():
    model = languages("hi", "ar", leave_out={"ar": (2,)})
    madx.activate(model, madx.Average("hi", "ar", weights=[1, 3]))
    wrapper = madx_state(model).outputs[(2, "output")].eval()
    assert "ar" not in wrapper.adapters
    h, x = torch.randn(1, 4, wrapper.dense.in_features), torch.randn(1, 4, wrapper.dense.out_features)
    with torch.no_grad():
        got = wrapper(h, x)
        r = wrapper.dense(h)
        hi = wrapper.adapters["hi"]
        expected = wrapper.LayerNorm(hi.adapter_up(hi.adapter_down(wrapper.LayerNorm(r + x))) + r + x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_the_invertible_adapters_are_averaged_on_the_embeddings():
    """AdapterHub's Average applies its first adapter's invertible adapter alone; madx averages them."""
    model = languages("hi", "ar", head="mlm")
    state = madx_state(model)
    madx.activate(model, madx.Average("hi", "ar", weights=[1, 3]))
    e = torch.randn(2, 6, model.config.hidden_size)
    with torch.no_grad():
        expected = 0.25 * state.invertible["hi"](e) + 0.75 * state.invertible["ar"](e)
        torch.testing.assert_close(state.first_invertible()(e), expected, rtol=0, atol=1e-6)
        madx.activate(model, madx.Average("hi"))  # one adapter: the exact inverse at the MLM head
        torch.testing.assert_close(state.first_invertible().inverse(state.first_invertible()(e)), e, rtol=0, atol=1e-5)
        madx.activate(model, madx.Average("hi", "ar"))
        embeddings = model.base_model.embeddings(input_ids=BATCH["input_ids"])
        madx.activate(model)
        plain = model.base_model.embeddings(input_ids=BATCH["input_ids"])
        torch.testing.assert_close(embeddings, 0.5 * state.invertible["hi"](plain) + 0.5 * state.invertible["ar"](plain),
                                   rtol=0, atol=1e-6)


def test_a_task_adapter_stacks_on_an_average():
    model = languages("hi", "ar")
    madx.add_adapter(model, "ner", TASK)
    randomize_adapter(model, "ner", 3)
    averaged = hidden(model, madx.Average("hi", "ar"), "ner")[-1]
    assert (averaged - hidden(model, "hi", "ner")[-1]).abs().max() > 1e-3
    assert (averaged - hidden(model, "ar", "ner")[-1]).abs().max() > 1e-3
    madx.activate(model, madx.Stack(madx.Average("hi", "ar"), "ner"))
    assert madx.active_adapters(model) == (madx.Average("hi", "ar"), "ner")


def test_weights_are_normalised_and_part_of_the_block():
    average = madx.Average("hi", "ar", weights=[2, 6])
    assert average.weights == (0.25, 0.75)
    assert average != madx.Average("hi", "ar") != madx.Fuse("hi", "ar")
    assert len({average, madx.Average("hi", "ar", weights=[1, 3]), madx.Fuse("hi", "ar")}) == 2
    assert repr(madx.Average("hi", "ar")) == "Average('hi', 'ar')"
    assert repr(average) == "Average('hi', 'ar', weights=[0.25, 0.75])"


@pytest.mark.parametrize("args, kwargs, message", [
    (("hi", "hi"), {}, r"adapter names repeat in Average"),
    (("hi", "ar"), {"weights": [1]}, r"weights \[1.0\] must be 2 numbers"),
    (("hi", "ar"), {"weights": [1, -1]}, r"must be 2 numbers >= 0"),
    (("hi", "ar"), {"weights": [0, 0]}, r"positive sum"),
    ((), {}, r"Average takes adapter names"),
])
def test_bad_averages_are_refused(args, kwargs, message):
    with pytest.raises(InputError, match=message):
        madx.Average(*args, **kwargs)


def test_activate_refuses_an_adapter_twice_and_an_unknown_one():
    model = languages("hi", "ar")
    with pytest.raises(ValueError, match="repeat"):
        madx.activate(model, madx.Average("hi", "ar"), "hi")
    with pytest.raises(KeyError, match="no adapter named"):
        madx.activate(model, madx.Average("hi", "sw"))


# ---- learned at test time (EMEA)


def test_an_average_with_scores_weighs_each_position_by_their_softmax():
    """Average(scores=...): per position softmax(scores); equal scores everywhere are the uniform average, and a
    position's scores weigh that position alone (the embeddings' the invertible adapters)."""
    from madx.adapters.composition import EMBEDDINGS

    model = languages("hi", "ar")
    positions = [*madx_state(model).outputs, EMBEDDINGS]
    equal = {p: torch.zeros(2) for p in positions}
    for got, expected in zip(hidden(model, madx.Average("hi", "ar", scores=equal)), hidden(model, madx.Average("hi", "ar"))):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    tilted = {p: torch.tensor([0.0, 0.0]) for p in positions}
    tilted[EMBEDDINGS] = torch.tensor([0.0, 100.0])  # all ar on the embeddings, uniform in the layers
    got = hidden(model, madx.Average("hi", "ar", scores=tilted))
    fixed = hidden(model, madx.Average("hi", "ar"))
    assert not torch.allclose(got[0], fixed[0])  # the embeddings moved
    torch.testing.assert_close(got[0], hidden(model, "ar")[0], rtol=0, atol=1e-5)  # ar's invertible adapter alone
    with pytest.raises(InputError, match=r"scores must hold one score per adapter at each position"):
        madx.Average("hi", "ar", scores={EMBEDDINGS: torch.zeros(3)})


def test_emea_lowers_the_entropy_of_the_predictions_by_moving_only_the_weights():
    """Two language adapters under a task head (a zero one, the base as it is, and a strong one): EMEA's steps on the
    batch move the ensemble's weights off uniform and lower the entropy of the predictions below the uniform
    average's, deterministically; no weight of the model changes."""
    from madx.core.settings import EmeaSettings, SettingError
    from madx.evaluation.emea import TestTimeWeights
    from madx.tasks.families import prediction_entropy

    model = languages("plain", "strong", head="token")
    for module in madx.adapters.model.adapter_modules(model, "plain").values():
        for weight in module.parameters():
            torch.nn.init.zeros_(weight)
    randomize_adapter(model, "strong", 3, scale=1.5)
    torch.nn.init.normal_(model.classifier.weight, std=0.3)  # a head whose certainty depends on the hidden states
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def entropy(*setup):
        madx.activate(model, *setup)
        with torch.no_grad():
            return float(prediction_entropy(model(**BATCH), BATCH))

    uniform = entropy(madx.Average("plain", "strong"))
    results = []
    for _ in range(2):
        emea = TestTimeWeights(model, ["plain", "strong"], EmeaSettings(steps=3, lr=10.0))
        madx.activate(model, emea.average)
        with torch.no_grad():
            emea(BATCH)
            learned = float(prediction_entropy(model(**BATCH), BATCH))
        results.append((emea.record(), learned))
    (record, learned), again = results
    assert (record, learned) == again  # deterministic
    assert record["uniform_entropy"] == pytest.approx(uniform, abs=1e-5)
    assert learned < uniform - 0.05  # 0.78 -> 0.72 here
    assert abs(record["weights"]["strong"] - 0.5) > 0.01 and sum(record["weights"].values()) == pytest.approx(1)
    assert record["batches"] == 1 and record["steps"] == 3
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # only the scores moved
    with pytest.raises(SettingError, match="steps=0 must be at least 1"):
        EmeaSettings(steps=0)
