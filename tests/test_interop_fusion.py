"""AdapterFusion interop against the real `adapters` library: fusions saved by either side give the other the same
hidden states and logits, static and dynamic, alone and under a language adapter, and a fusion of Houlsby adapters
(fusion layers after attention too) with the flags the presets leave off."""

import json
import subprocess
from pathlib import Path

import pytest
import torch
import transformers

import madx
from tiny import INTEROP_BATCH as BATCH, INTEROP_CONFIG as CONFIG, madx_outputs, randomize, randomize_adapter

HERE = Path(__file__).parent
FLAGS = {**madx.FusionConfig.preset("dynamic").to_adapterhub(), "query_before_ln": True, "residual_before": True,
         "value_before_softmax": False}
# case -> the fusion's config, whether AdapterHub saves it as safetensors (else its legacy .bin), the adapters' kind
CASES = {"static": ("static", False, "pfeiffer"), "dynamic": ("dynamic", True, "pfeiffer"),
         "houlsby_flags": (FLAGS, True, "houlsby")}
TOL = 1e-5


def build():
    return transformers.XLMRobertaForSequenceClassification(transformers.XLMRobertaConfig(**CONFIG)).eval()


@pytest.fixture(scope="module")
def interop(tmp_path_factory, adapterhub_python):
    """Run AdapterHub once over both presets; returns {preset: (case dir, madx model, AdapterHub's outputs)}."""
    root = tmp_path_factory.mktemp("fusion_interop")
    spec, models = [], {}
    for i, (preset, (fusion, safetensors, architecture)) in enumerate(CASES.items()):
        d = root / preset
        torch.manual_seed(10 + i)
        model = build()
        (d / "hub").mkdir(parents=True)  # AdapterHub writes its directories into it
        torch.save(model.state_dict(), d / "base.pt")  # before any adapter: the base and head AdapterHub loads
        kind = dict(architecture=architecture)
        madx.add_adapter(model, "sw", madx.AdapterConfig(**kind, reduction_factor=2, invertible=True))
        madx.add_adapter(model, "a", madx.AdapterConfig(**kind, reduction_factor=4))
        madx.add_adapter(model, "b", madx.AdapterConfig(**kind, reduction_factor=8, non_linearity="gelu"))
        madx.add_fusion(model, ["a", "b"], fusion)
        for j, name in enumerate(("sw", "a", "b")):
            randomize_adapter(model, name, 20 + j)
        randomize(madx.adapters.fusion.fusion_modules(model, "a,b").values(), 30 + i)
        for name in ("sw", "a", "b"):
            madx.save_adapter(model, name, d / "madx" / name)
        madx.save_fusion(model, ["a", "b"], d / "madx" / "fusion")
        models[preset] = model
        spec.append(dict(config=CONFIG, base_weights=str(d / "base.pt"), batch=BATCH, madx_dir=str(d / "madx"),
                         hub_dir=str(d / "hub"), fusion=fusion, safetensors=safetensors, seed=40 + i,
                         architecture=architecture,
                         out=str(d / "hub_outputs.pt")))
    (root / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run([adapterhub_python, str(HERE / "adapterhub_fusion.py"), str(root / "spec.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {preset: (root / preset, models[preset], torch.load(root / preset / "hub_outputs.pt"))
            for preset in CASES}


@pytest.mark.parametrize("preset", CASES)
def test_madx_fusions_load_into_adapterhub(interop, preset):
    _, model, hub = interop[preset]
    for setup, prefix in (((madx.Fuse("a", "b"),), "madx_fuse"), (("sw", madx.Fuse("a", "b")), "madx_stack")):
        hidden, logits = madx_outputs(model, BATCH, *setup)
        torch.testing.assert_close(hub[f"{prefix}.hidden"], hidden, atol=TOL, rtol=TOL)
        torch.testing.assert_close(hub[f"{prefix}.logits"], logits, atol=TOL, rtol=TOL)


@pytest.mark.parametrize("preset", CASES)
def test_adapterhub_fusions_load_into_madx(interop, preset):
    d, trained, hub = interop[preset]
    fusion, safetensors, _ = CASES[preset]
    weights = "model_adapter_fusion.safetensors" if safetensors else "pytorch_model_adapter_fusion.bin"
    assert (d / "hub" / "fusion" / weights).is_file()
    model = build()
    model.load_state_dict(torch.load(d / "base.pt"))
    for name in ("hub_sw", "hub_a", "hub_b"):
        madx.load_adapter(model, d / "hub" / name)
    name = madx.load_fusion(model, d / "hub" / "fusion")
    assert name == "hub_a,hub_b" and madx.fusion_config(model, name) == madx.FusionConfig.preset(fusion)
    fuse = madx.Fuse("hub_a", "hub_b")
    for setup, prefix in (((fuse,), "hub_fuse"), (("hub_sw", fuse), "hub_stack")):
        hidden, logits = madx_outputs(model, BATCH, *setup)
        torch.testing.assert_close(hidden, hub[f"{prefix}.hidden"], atol=TOL, rtol=TOL)
        torch.testing.assert_close(logits, hub[f"{prefix}.logits"], atol=TOL, rtol=TOL)
    # the same fusion under other names for its adapters
    other = build()
    other.load_state_dict(torch.load(d / "base.pt"))
    for name, new in (("hub_sw", "sw"), ("hub_a", "x"), ("hub_b", "y")):
        madx.load_adapter(other, d / "hub" / name, name=new)
    assert madx.load_fusion(other, d / "hub" / "fusion", adapter_names=["x", "y"]) == "x,y"
    torch.testing.assert_close(madx_outputs(other, BATCH, "sw", madx.Fuse("x", "y"))[1], hub["hub_stack.logits"],
                               atol=TOL, rtol=TOL)
