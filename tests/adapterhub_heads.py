"""The AdapterHub side of the head interop test; runs in its own venv (see adapterhub_side.py).

Usage: python adapterhub_heads.py SPEC.json
For each case: an <Arch>AdapterModel with the base weights madx wrote; (a) load the task adapter and head madx
saved (`load_adapter(..., with_head=True)`) and record the head's outputs; (b) add AdapterHub's own adapter and
head of the same type with random weights, save them with the head, and record the outputs.
"""

import json
import sys

import adapters
import torch
import transformers

ADD_HEAD = {"ner": "add_tagging_head", "classification": "add_classification_head",
            "multiple_choice": "add_multiple_choice_head", "qa": "add_qa_head"}


def logits(model, batch, task_type):
    with torch.no_grad():
        out = model(**batch)
    if task_type == "qa":
        return torch.stack([out.start_logits, out.end_logits], -1)
    return out.logits


def run_case(case):
    config = getattr(transformers, case["config_class"])(**case["config"])
    model = getattr(adapters, case["adapter_model_class"])(config)
    missing, unexpected = model.load_state_dict(torch.load(case["base_weights"], weights_only=True), strict=False)
    # the AdapterModel's own extras (its pooler: used by no head here; prompt tuning) are not base weights
    assert not [k for k in missing if not k.startswith("heads.") and not any(
        part in k for part in ("position_ids", ".pooler.", "prompt_tuning"))], missing
    model.eval()
    batch = {k: torch.tensor(v) for k, v in case["batch"].items()}
    task_type, results = case["task_type"], {}

    name = model.load_adapter(case["madx_dir"], with_head=True, use_safetensors=True)
    model.set_active_adapters(name)
    model.active_head = name
    results["madx"] = logits(model, batch, task_type)
    model.delete_adapter(name)
    model.delete_head(name)

    torch.manual_seed(case["seed"])
    model.add_adapter("ah", config="seq_bn")
    kwargs = {"num_choices": case["num_choices"]} if task_type == "multiple_choice" else \
        {} if task_type == "qa" else {"num_labels": len(case["labels"]), "id2label": dict(enumerate(case["labels"]))}
    getattr(model, ADD_HEAD[task_type])("ah", **kwargs)
    with torch.no_grad():
        for key, param in model.named_parameters():
            if ".ah." in key or key.startswith("heads.ah."):
                param.copy_(torch.randn_like(param) * 0.2)
    model.set_active_adapters("ah")
    model.active_head = "ah"
    results["hub"] = logits(model, batch, task_type)
    model.save_adapter(case["hub_dir"], "ah", with_head=True, use_safetensors=True)
    torch.save(results, case["out"])


if __name__ == "__main__":
    for case in json.load(open(sys.argv[1])):
        run_case(case)
    print("adapters", adapters.__version__, "transformers", transformers.__version__)
