"""Task heads in AdapterHub's format against the real `adapters` library, both ways: a task adapter with its
head saved by madx loads into AdapterHub's AdapterModel (load_adapter(..., with_head=True)) and gives the same
outputs; one AdapterHub trained (add_*_head, save_adapter(..., with_head=True)) runs in madx the same."""

import json
import subprocess

import pytest
import torch
import transformers

import madx
from madx.adapters.model import head_state_dict
from madx.tasks.families import family, load_head, read_head_config, save_head
from test_interop import CASES, HERE

TYPES = ("ner", "classification", "multiple_choice", "qa")
LABELS = {"ner": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], "classification": ["a", "b", "c"],
          "multiple_choice": [], "qa": []}
ARCH = {"xlm-roberta": "XLMRoberta", "bert": "Bert"}
TOL = 1e-5


def task_model(model_type, task_type):
    config_class, _, kwargs = CASES[model_type]
    labels = LABELS[task_type]
    extra = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
             "label2id": {n: i for i, n in enumerate(labels)}} if labels else {}
    config = getattr(transformers, config_class)(**kwargs, **extra)
    return getattr(transformers, f"{ARCH[model_type]}{family(task_type).auto_class[len('AutoModel'):]}")(config).eval()


def batch_for(task_type):
    ids = [[0, 5, 17, 99, 42, 8, 2, 1], [0, 33, 7, 2, 1, 1, 1, 1]]
    mask = [[1] * 8, [1, 1, 1, 1, 0, 0, 0, 0]]
    if task_type == "multiple_choice":  # 2 examples x 2 choices
        return {"input_ids": [ids, ids[::-1]], "attention_mask": [mask, mask[::-1]]}
    return {"input_ids": ids, "attention_mask": mask}


def head_logits(model, batch, task_type):
    with torch.no_grad():
        out = model(**batch)
    return torch.stack([out.start_logits, out.end_logits], -1) if task_type == "qa" else out.logits


@pytest.fixture(scope="module")
def heads(tmp_path_factory, adapterhub_python):
    root = tmp_path_factory.mktemp("heads")
    spec, madx_out = [], {}
    for i, model_type in enumerate(CASES):
        for task_type in TYPES:
            d = root / f"{model_type}-{task_type}"
            d.mkdir()
            torch.manual_seed(10 + i)
            model = task_model(model_type, task_type)
            torch.save({k: v for k, v in model.state_dict().items() if k.startswith(model.base_model_prefix)
                        and ".pooler." not in k}, d / "base.pt")
            madx.add_adapter(model, "t", madx.AdapterConfig(reduction_factor=4))
            generator = torch.Generator().manual_seed(20 + i)
            with torch.no_grad():
                for module in [*madx.adapters.model.adapter_modules(model, "t").values()]:
                    for p in module.parameters():
                        p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
                for p in head_state_dict(model).values():
                    p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
            madx.activate(model, "t")
            madx.save_adapter(model, "t", d / "madx")
            save_head(model, d / "madx", "t", LABELS[task_type], task_type, num_choices=2)
            batch = batch_for(task_type)
            madx_out[model_type, task_type] = head_logits(model, {k: torch.tensor(v) for k, v in batch.items()},
                                                          task_type)
            config_class, _, kwargs = CASES[model_type]
            spec.append(dict(config_class=config_class, config=kwargs, adapter_model_class=f"{ARCH[model_type]}AdapterModel",
                             base_weights=str(d / "base.pt"), batch=batch, task_type=task_type, seed=3,
                             labels=LABELS[task_type], num_choices=2, madx_dir=str(d / "madx"),
                             hub_dir=str(d / "hub"), out=str(d / "hub_outputs.pt")))
    (root / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run([adapterhub_python, str(HERE / "adapterhub_heads.py"), str(root / "spec.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return root, madx_out


@pytest.mark.parametrize("model_type", CASES)
@pytest.mark.parametrize("task_type", TYPES)
def test_madx_heads_load_into_adapterhub(heads, model_type, task_type):
    root, madx_out = heads
    hub = torch.load(root / f"{model_type}-{task_type}" / "hub_outputs.pt", weights_only=True)
    assert hub["madx"].shape == madx_out[model_type, task_type].shape
    assert (hub["madx"] - madx_out[model_type, task_type]).abs().max() <= TOL


@pytest.mark.parametrize("model_type", CASES)
@pytest.mark.parametrize("task_type", TYPES)
def test_adapterhub_heads_load_into_madx(heads, model_type, task_type):
    root, _ = heads
    d = root / f"{model_type}-{task_type}"
    hub = torch.load(d / "hub_outputs.pt", weights_only=True)
    model = task_model(model_type, task_type)
    model.load_state_dict(torch.load(d / "base.pt", weights_only=True), strict=False)
    head = read_head_config(d / "hub")
    assert head["task_type"] == task_type and head["label_names"] == LABELS[task_type]
    name = madx.load_adapter(model, d / "hub")
    load_head(model, d / "hub")
    madx.activate(model, name)
    batch = {k: torch.tensor(v) for k, v in batch_for(task_type).items()}
    out = head_logits(model, batch, task_type)
    assert (out - hub["hub"]).abs().max() <= TOL
    assert out.abs().max() > 1e-3  # a real head, not zeros
