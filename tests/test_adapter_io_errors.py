"""Every bad adapter directory is a clear error naming the file, and nothing is partly loaded; the checksums madx
writes beside an adapter catch a corruption that keeps the file readable."""

import hashlib
import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

import madx
from madx.core.files import CHECKSUMS
from tiny import flip_bytes, tiny_model


def _saved(tmp_path, model_type="xlm-roberta", **overrides):
    model = tiny_model(model_type, **overrides)
    madx.add_adapter(model, "sw", madx.LANGUAGE_ADAPTER)
    return madx.save_adapter(model, "sw", tmp_path / "sw")


def _edit_weights(directory, edit):
    """Rewrite the weights as another tool would: a directory without madx's checksums, as AdapterHub writes it."""
    tensors = load_file(directory / "adapter.safetensors")
    edit(tensors)
    save_file(tensors, directory / "adapter.safetensors")
    (directory / CHECKSUMS).unlink()


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


def flipped_weights(tmp_path):
    """The issue's case: bytes flipped inside adapter.safetensors, the size kept; the file still reads."""
    d = _saved(tmp_path)
    size = (d / "adapter.safetensors").stat().st_size
    flip_bytes(d / "adapter.safetensors")
    assert (d / "adapter.safetensors").stat().st_size == size
    load_file(d / "adapter.safetensors")  # a valid safetensors file: only the checksum can tell
    return d, r"adapter.safetensors: its bytes differ from the sha256 madx recorded .* retrain or download it again"


def flipped_config(tmp_path):
    d = _saved(tmp_path)
    config = d / "adapter_config.json"
    config.write_text(config.read_text().replace('"reduction_factor": 2', '"reduction_factor": 4'))
    return d, "adapter_config.json: its bytes differ from the sha256 madx recorded"


def corrupt_checksums(tmp_path):
    d = _saved(tmp_path)
    (d / CHECKSUMS).write_text("{oops")
    return d, f"{CHECKSUMS}: not valid JSON"


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this would run",))


def code_running_pickle(tmp_path):
    """AdapterHub's legacy pytorch_adapter.bin that is a pickle calling a function when loaded."""
    d = _saved(tmp_path)
    (d / "adapter.safetensors").unlink()
    (d / CHECKSUMS).unlink()
    torch.save({"roberta.encoder.layer.0.output.adapters.sw.adapter_up.weight": _RunsCode()}, d / "pytorch_adapter.bin")
    return d, r"pytorch_adapter.bin: not a plain tensor file \(it asks to call (posix|nt).system when loaded\); " \
              r"madx refuses it for safety.* Convert it to safetensors with a tool you trust"


@pytest.mark.parametrize("case", [
    hidden_size, layer_count, model_type, missing_key, unexpected_key, foreign_key, wrong_shape, truncated,
    no_weights, no_config, bad_json, unsupported_config, not_a_directory, flipped_weights, flipped_config,
    corrupt_checksums, code_running_pickle,
])
def test_bad_adapter_directory(tmp_path, case):
    directory, message = case(tmp_path)
    model = tiny_model("xlm-roberta")
    madx.add_adapter(model, "other", madx.TASK_ADAPTER)
    keys_before = set(model.state_dict())
    with pytest.raises(madx.AdapterLoadError, match=message) as err:
        madx.load_adapter(model, directory)
    assert str(directory) in str(err.value)  # the message names the file or directory
    assert "weights_only" not in str(err.value)  # never torch's advice to turn the safety check off
    assert set(model.state_dict()) == keys_before  # nothing partly loaded
    assert madx.active_adapters(model) == ()
    assert madx.adapters.model.madx_state(model).configs.keys() == {"other"}


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


def test_save_records_every_file_checksum_and_a_directory_without_them_loads(tmp_path):
    """madx_checksums.json lists the sha256 of the files beside it; AdapterHub's directories have none and load as
    before (here: the same directory with the record removed, then changed as a tool would)."""
    directory = _saved(tmp_path)
    recorded = json.loads((directory / CHECKSUMS).read_text())
    assert recorded == {name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
                        for name in ("adapter.safetensors", "adapter_config.json")}
    (directory / CHECKSUMS).unlink()
    flip_bytes(directory / "adapter.safetensors")  # unchecked without a record: loads, as AdapterHub would
    assert madx.load_adapter(tiny_model("xlm-roberta"), directory) == "sw"


def test_inspect_verifies_the_checksums(tmp_path, capsys):
    from madx.commands.inspect import main as inspect

    directory = _saved(tmp_path)
    assert inspect([str(directory)]) == 0
    assert json.loads(capsys.readouterr().out)["checksums"] == "verified"
    flip_bytes(directory / "adapter.safetensors")
    assert inspect([str(directory)]) == 2
    assert "adapter.safetensors: its bytes differ" in capsys.readouterr().err
