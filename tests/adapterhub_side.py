"""The AdapterHub side of the interop test; runs in its own venv (adapters pins transformers 4.57).

Usage: python adapterhub_side.py SPEC.json
For each case in SPEC: build the tiny model, load the base weights madx wrote, then
(a) load the adapters madx saved and record outputs; (b) add AdapterHub's own adapters with
random weights, save them, and record outputs. Outputs go to the case's `out` file.
"""

import json
import sys

import adapters
import torch
import transformers
from adapters import DoubleSeqBnConfig, SeqBnConfig, SeqBnInvConfig, Stack

HUB_CONFIGS = {"seq_bn": SeqBnConfig, "seq_bn_inv": SeqBnInvConfig, "double_seq_bn": DoubleSeqBnConfig}


def outputs(model, batch, setup, prefix):
    model.set_active_adapters(setup)
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    return {f"{prefix}.hidden": out.hidden_states[-1], f"{prefix}.logits": out.logits}


def run_case(case):
    config = getattr(transformers, case["config_class"])(**case["config"])
    model = getattr(transformers, case["model_class"])(config)
    base = torch.load(case["base_weights"], weights_only=True)
    missing, unexpected = model.load_state_dict(base, strict=False)
    assert not [k for k in missing if "position_ids" not in k], missing
    assert not unexpected, unexpected
    adapters.init(model)
    # AdapterHub applies the inverse NICE only in its flex MLM head (heads/language_modeling.py:
    # head layers, then invertible_adapter(x, rev=True), then the output embeddings); the plain HF
    # *ForMaskedLM head has no such step, so put AdapterHub's own inverse at that same place.
    model.get_output_embeddings().register_forward_pre_hook(
        lambda module, args: (model.base_model.invertible_adapters_forward(args[0], rev=True),)
    )
    model.eval()
    batch = {k: torch.tensor(v) for k, v in case["batch"].items()}
    results = {}

    # (a) adapters saved by madx
    lang = model.load_adapter(case["madx_lang"], use_safetensors=True)
    task = model.load_adapter(case["madx_task"], use_safetensors=True)
    results.update(outputs(model, batch, lang, "madx_single"))
    results.update(outputs(model, batch, Stack(lang, task), "madx_stack"))
    model.delete_adapter(lang)
    model.delete_adapter(task)

    # (b) adapters made and saved by AdapterHub
    torch.manual_seed(case["seed"])
    for name, spec in (("ah_lang", case["hub_lang"]), ("ah_task", case["hub_task"])):
        model.add_adapter(name, config=HUB_CONFIGS[spec["type"]](**spec["kwargs"]))
    with torch.no_grad():
        for key, param in model.named_parameters():
            if ".ah_lang." in key or ".ah_task." in key:
                param.copy_(torch.randn_like(param) * 0.2)
    model.save_adapter(case["hub_lang_dir"], "ah_lang", with_head=False)  # legacy pytorch_adapter.bin
    model.save_adapter(case["hub_task_dir"], "ah_task", with_head=False, use_safetensors=True)
    results.update(outputs(model, batch, "ah_lang", "hub_single"))
    results.update(outputs(model, batch, Stack("ah_lang", "ah_task"), "hub_stack"))
    torch.save({k: v.contiguous() for k, v in results.items()}, case["out"])


if __name__ == "__main__":
    for case in json.load(open(sys.argv[1])):
        run_case(case)
    print("adapters", adapters.__version__, "transformers", transformers.__version__)
