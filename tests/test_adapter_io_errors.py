"""Every bad adapter directory is a clear error naming the file, and nothing is partly loaded."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import madx
from tiny import tiny_model


def _saved(tmp_path, model_type="xlm-roberta", **overrides):
    model = tiny_model(model_type, **overrides)
    madx.add_adapter(model, "sw", madx.LANGUAGE_ADAPTER)
    return madx.save_adapter(model, "sw", tmp_path / "sw")


def _edit_weights(directory, edit):
    tensors = load_file(directory / "adapter.safetensors")
    edit(tensors)
    save_file(tensors, directory / "adapter.safetensors")


def hidden_size(tmp_path):
    return _saved(tmp_path, hidden_size=48), "hidden size 48"


def layer_count(tmp_path):
    return _saved(tmp_path, num_hidden_layers=5), "up to layer 4, but the model has 3 layers"


def model_type(tmp_path):
    return _saved(tmp_path, "bert"), "model type 'bert'"


def missing_key(tmp_path):
    d = _saved(tmp_path)
    _edit_weights(d, lambda t: t.pop("roberta.encoder.layer.1.output.adapters.sw.adapter_up.weight"))
    return d, "1 missing keys"


def unexpected_key(tmp_path):
    d = _saved(tmp_path)
    _edit_weights(d, lambda t: t.update({"roberta.encoder.layer.0.output.adapters.sw.extra.weight": torch.ones(2)}))
    return d, "1 unexpected keys"


def foreign_key(tmp_path):
    d = _saved(tmp_path)
    _edit_weights(d, lambda t: t.update({"roberta.pooler.dense.weight": torch.ones(2)}))
    return d, "unexpected key 'roberta.pooler.dense.weight'"


def wrong_shape(tmp_path):
    d = _saved(tmp_path)
    key = "roberta.encoder.layer.0.output.adapters.sw.adapter_up.bias"
    _edit_weights(d, lambda t: t.update({key: torch.ones(7)}))
    return d, "has shape \\(7,\\)"


def truncated(tmp_path):
    d = _saved(tmp_path)
    data = (d / "adapter.safetensors").read_bytes()
    (d / "adapter.safetensors").write_bytes(data[: len(data) // 2])
    return d, "truncated or corrupt"


def no_weights(tmp_path):
    d = _saved(tmp_path)
    (d / "adapter.safetensors").unlink()
    return d, "no adapter.safetensors"


def no_config(tmp_path):
    d = _saved(tmp_path)
    (d / "adapter_config.json").unlink()
    return d, "adapter_config.json: missing"


def bad_json(tmp_path):
    d = _saved(tmp_path)
    (d / "adapter_config.json").write_text("{not json")
    return d, "not valid JSON"


def unsupported_config(tmp_path):
    d = _saved(tmp_path)
    meta = json.loads((d / "adapter_config.json").read_text())
    meta["config"]["is_parallel"] = True
    (d / "adapter_config.json").write_text(json.dumps(meta))
    return d, "is_parallel=True is not supported"


def not_a_directory(tmp_path):
    return tmp_path / "nowhere", "adapter directory not found"


@pytest.mark.parametrize("case", [
    hidden_size, layer_count, model_type, missing_key, unexpected_key, foreign_key, wrong_shape, truncated,
    no_weights, no_config, bad_json, unsupported_config, not_a_directory,
])
def test_bad_adapter_directory(tmp_path, case):
    directory, message = case(tmp_path)
    model = tiny_model("xlm-roberta")
    madx.add_adapter(model, "other", madx.TASK_ADAPTER)
    keys_before = set(model.state_dict())
    with pytest.raises(madx.AdapterLoadError, match=message) as err:
        madx.load_adapter(model, directory)
    assert str(directory) in str(err.value)  # the message names the file or directory
    assert set(model.state_dict()) == keys_before  # nothing partly loaded
    assert madx.active_adapters(model) == ()
    assert madx.model.madx_state(model).configs.keys() == {"other"}


def test_duplicate_name_needs_rename(tmp_path):
    directory = _saved(tmp_path)
    model = tiny_model("xlm-roberta")
    madx.load_adapter(model, directory)
    with pytest.raises(madx.AdapterLoadError, match="pass name= to rename"):
        madx.load_adapter(model, directory)
    assert madx.load_adapter(model, directory, name="sw2") == "sw2"


def test_save_replaces_atomically(tmp_path):
    model = tiny_model("xlm-roberta")
    madx.add_adapter(model, "sw", madx.LANGUAGE_ADAPTER)
    madx.save_adapter(model, "sw", tmp_path / "sw")
    (tmp_path / "sw" / "stale.txt").write_text("old")
    madx.save_adapter(model, "sw", tmp_path / "sw")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sw"]  # no temporary left behind
    assert not (tmp_path / "sw" / "stale.txt").exists()
