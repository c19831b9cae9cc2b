"""AdapterHub interop against the real `adapters` library: both directions, same outputs."""

import json
import subprocess
from pathlib import Path

import pytest
import torch
import transformers

import madx
from tiny import madx_outputs, randomize_adapter

HERE = Path(__file__).parent
TINY = dict(
    vocab_size=120, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
    max_position_embeddings=64, type_vocab_size=1, attn_implementation="eager",
)
CASES = {
    "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaForMaskedLM", dict(TINY, pad_token_id=1)),
    "bert": ("BertConfig", "BertForMaskedLM", dict(TINY, pad_token_id=0)),
}
MADX_LANG = madx.AdapterConfig(reduction_factor=2, invertible=True, non_linearity="gelu")
MADX_TASK = madx.AdapterConfig(architecture="houlsby", reduction_factor=4, non_linearity="swish", leave_out=(2,))
HUB_LANG = {"type": "seq_bn_inv", "kwargs": {"reduction_factor": 2}}
HUB_TASK = {"type": "seq_bn", "kwargs": {"reduction_factor": 8, "leave_out": [0]}}
TOL = 1e-5


def build(model_type):
    config_class, model_class, kwargs = CASES[model_type]
    config = getattr(transformers, config_class)(**kwargs)
    return getattr(transformers, model_class)(config).eval()


@pytest.fixture(scope="module")
def interop(tmp_path_factory, adapterhub_python):
    """Run AdapterHub once over every case; returns {model_type: (case dir, madx model, hub outputs)}."""
    root = tmp_path_factory.mktemp("interop")
    batch = {
        "input_ids": [[0, 5, 17, 99, 42, 8, 2, 1], [0, 33, 7, 2, 1, 1, 1, 1]],
        "attention_mask": [[1] * 8, [1, 1, 1, 1, 0, 0, 0, 0]],
    }
    spec, models = [], {}
    for i, model_type in enumerate(CASES):
        d = root / model_type
        d.mkdir()
        torch.manual_seed(i)
        model = build(model_type)
        torch.save(model.state_dict(), d / "base.pt")
        madx.add_adapter(model, "lang", MADX_LANG)
        madx.add_adapter(model, "task", MADX_TASK)
        randomize_adapter(model, "lang", 1)
        randomize_adapter(model, "task", 2)
        madx.save_adapter(model, "lang", d / "madx_lang")
        madx.save_adapter(model, "task", d / "madx_task")
        models[model_type] = model
        config_class, model_class, kwargs = CASES[model_type]
        spec.append(dict(
            config_class=config_class, model_class=model_class, config=kwargs, base_weights=str(d / "base.pt"),
            batch=batch, seed=3, madx_lang=str(d / "madx_lang"), madx_task=str(d / "madx_task"),
            hub_lang=HUB_LANG, hub_task=HUB_TASK, hub_lang_dir=str(d / "hub_lang"), hub_task_dir=str(d / "hub_task"),
            out=str(d / "hub_outputs.pt"),
        ))
    (root / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run([adapterhub_python, str(HERE / "adapterhub_side.py"), str(root / "spec.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    batch = {k: torch.tensor(v) for k, v in batch.items()}
    return {t: (root / t, models[t], torch.load(root / t / "hub_outputs.pt", weights_only=True), batch) for t in CASES}


@pytest.mark.parametrize("model_type", CASES)
def test_madx_adapters_load_into_adapterhub(interop, model_type):
    _, model, hub, batch = interop[model_type]
    for prefix, stack in (("madx_single", ("lang",)), ("madx_stack", ("lang", "task"))):
        hidden, logits = madx_outputs(model, batch, *stack)
        assert (hidden - hub[f"{prefix}.hidden"]).abs().max() <= TOL
        assert (logits - hub[f"{prefix}.logits"]).abs().max() <= TOL  # inverse NICE before the output layer
        # the adapters do change the function: the comparison is not between two base models
        assert (hidden - madx_outputs(model, batch)[0]).abs().max() > 1e-2


@pytest.mark.parametrize("model_type", CASES)
def test_adapterhub_adapters_load_into_madx(interop, model_type):
    d, _, hub, batch = interop[model_type]
    model = build(model_type)
    model.load_state_dict(torch.load(d / "base.pt", weights_only=True))
    assert (d / "hub_lang" / "pytorch_adapter.bin").exists()  # legacy format, read with weights_only=True
    assert (d / "hub_task" / "adapter.safetensors").exists()
    lang = madx.load_adapter(model, d / "hub_lang")
    task = madx.load_adapter(model, d / "hub_task", name="ner")
    assert (lang, task) == ("ah_lang", "ner")
    assert madx.adapter_config(model, lang).invertible
    assert madx.adapter_config(model, task).leave_out == (0,)
    for prefix, stack in (("hub_single", (lang,)), ("hub_stack", (lang, task))):
        hidden, logits = madx_outputs(model, batch, *stack)
        assert (hidden - hub[f"{prefix}.hidden"]).abs().max() <= TOL
        assert (logits - hub[f"{prefix}.logits"]).abs().max() <= TOL


def test_adapterhub_adapters_load_by_hub_id_from_the_hub_cache(interop, tmp_path, monkeypatch, capsys):
    """An adapter AdapterHub saved, published on the hub (here: a hub cache laid out as the hub client lays it out,
    read offline): madx.load_adapter(model, "org/name") and "org/name@revision" load it as its directory does (the
    same outputs), `madx inspect` names the commit, and an id the cache lacks is an error saying how to get it."""
    from hubcache import offline_cache, publish

    from madx.adapters.hub import AdapterHubError, resolve_adapter
    from madx.commands.inspect import main as inspect

    d, _, hub, batch = interop["xlm-roberta"]
    commit, older = "a" * 40, "b" * 40
    offline_cache(monkeypatch, tmp_path / "hub")
    publish(tmp_path / "hub", "AdapterHub/tiny-sw-wiki_pfeiffer", d / "hub_lang", commit, refs=("main", "v1"))
    publish(tmp_path / "hub", "AdapterHub/tiny-sw-wiki_pfeiffer", d / "hub_task", older, refs=())
    for spec in ("AdapterHub/tiny-sw-wiki_pfeiffer", f"AdapterHub/tiny-sw-wiki_pfeiffer@{commit}",
                 "AdapterHub/tiny-sw-wiki_pfeiffer@v1"):
        directory, resolved = resolve_adapter(spec)
        assert resolved == commit and directory.name == commit and (directory / "pytorch_adapter.bin").is_file()
        model = build("xlm-roberta")
        model.load_state_dict(torch.load(d / "base.pt", weights_only=True))
        lang = madx.load_adapter(model, spec)
        hidden, logits = madx_outputs(model, batch, lang)
        assert (hidden - hub["hub_single.hidden"]).abs().max() <= TOL
    assert resolve_adapter(f"AdapterHub/tiny-sw-wiki_pfeiffer@{older}")[0].name == older  # an older commit, pinned
    assert inspect([f"AdapterHub/tiny-sw-wiki_pfeiffer@{commit}"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["hub"]["commit"] == commit and summary["name"] == "ah_lang" and summary["config"]["invertible"]
    with pytest.raises(AdapterHubError, match=r"adapter AdapterHub/tiny-sw-wiki_pfeiffer at revision v2: not in the "
                                              r"hub cache, and the hub cannot be reached .*hf download "
                                              r"AdapterHub/tiny-sw-wiki_pfeiffer --revision v2"):
        resolve_adapter("AdapterHub/tiny-sw-wiki_pfeiffer@v2")
    with pytest.raises(AdapterHubError, match=r"adapter AdapterHub/nothing-here: not in the hub cache"):
        madx.load_adapter(build("xlm-roberta"), "AdapterHub/nothing-here")
