"""The AdapterHub side of the fusion interop test; runs in the AdapterHub venv (see conftest.adapterhub_python).

Usage: python adapterhub_fusion.py SPEC.json
For each case: build the tiny classifier, load the base weights madx wrote, then
(a) load the adapters and the fusion madx saved and record outputs; (b) add AdapterHub's own adapters and fusion
with random weights, save them (the fusion in the case's format) and record outputs.
"""

import json
import sys

import adapters
import torch
import transformers
from adapters import DoubleSeqBnConfig, DoubleSeqBnInvConfig, Fuse, SeqBnConfig, SeqBnInvConfig, Stack

# madx's architecture -> AdapterHub's config classes (plain, with an invertible adapter)
CONFIGS = {"pfeiffer": (SeqBnConfig, SeqBnInvConfig), "houlsby": (DoubleSeqBnConfig, DoubleSeqBnInvConfig)}


def outputs(model, batch, setup, prefix):
    model.set_active_adapters(setup)
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    return {f"{prefix}.hidden": out.hidden_states[-1], f"{prefix}.logits": out.logits}


def record(model, batch, lang, fuse, prefix):
    return {**outputs(model, batch, fuse, f"{prefix}_fuse"), **outputs(model, batch, Stack(lang, fuse), f"{prefix}_stack")}


def run_case(case):
    config = transformers.XLMRobertaConfig(**case["config"])
    model = transformers.XLMRobertaForSequenceClassification(config)
    missing, unexpected = model.load_state_dict(torch.load(case["base_weights"], weights_only=True), strict=False)
    assert not [k for k in missing if "position_ids" not in k], missing
    assert not unexpected, unexpected
    adapters.init(model)
    model.eval()
    batch = {k: torch.tensor(v) for k, v in case["batch"].items()}
    results = {}

    # (a) what madx saved
    for name in ("sw", "a", "b"):
        model.load_adapter(case["madx_dir"] + "/" + name, use_safetensors=True)
    model.load_adapter_fusion(case["madx_dir"] + "/fusion", use_safetensors=True)
    model.eval()
    results.update(record(model, batch, "sw", Fuse("a", "b"), "madx"))
    model.delete_adapter_fusion(Fuse("a", "b"))
    for name in ("sw", "a", "b"):
        model.delete_adapter(name)

    # (b) made and saved by AdapterHub
    torch.manual_seed(case["seed"])
    plain, invertible = CONFIGS[case["architecture"]]
    model.add_adapter("hub_sw", config=invertible(reduction_factor=2))
    model.add_adapter("hub_a", config=plain(reduction_factor=4))
    model.add_adapter("hub_b", config=plain(reduction_factor=8))
    model.add_adapter_fusion(Fuse("hub_a", "hub_b"), config=case["fusion"])
    with torch.no_grad():
        for key, param in model.named_parameters():
            if ".hub_" in key or "hub_a,hub_b" in key:
                param.copy_(torch.randn_like(param) * 0.2)
    model.eval()
    for name in ("hub_sw", "hub_a", "hub_b"):
        model.save_adapter(case["hub_dir"] + "/" + name, name, with_head=False, use_safetensors=True)
    model.save_adapter_fusion(case["hub_dir"] + "/fusion", "hub_a,hub_b", use_safetensors=case["safetensors"])
    results.update(record(model, batch, "hub_sw", Fuse("hub_a", "hub_b"), "hub"))
    torch.save({k: v.contiguous() for k, v in results.items()}, case["out"])


if __name__ == "__main__":
    for case in json.load(open(sys.argv[1])):
        run_case(case)
    print("adapters", adapters.__version__, "transformers", transformers.__version__)
