"""The AdapterHub side of the embeddings interop test; runs in its own venv (adapters pins transformers 4.57).

Usage: python adapterhub_embeddings.py SPEC.json
(a) load the language adapter and the embeddings madx saved (model.load_adapter, model.load_embeddings) and
record the hidden states and the loaded tokenizer's ids; (b) make embeddings with AdapterHub's own
add_embeddings (rows of pieces the base tokenizer has copied from its embeddings), record their first rows,
change them, save them with save_embeddings, and record the hidden states they give.
"""

import json
import sys

import adapters
import torch
import transformers


def hidden(model, input_ids):
    with torch.no_grad():
        return model(input_ids=input_ids, output_hidden_states=True).hidden_states[-1]


def main(spec_file):
    spec = json.loads(open(spec_file).read())
    config = transformers.XLMRobertaConfig(**spec["config"])
    model = transformers.XLMRobertaForMaskedLM(config)
    model.load_state_dict(torch.load(spec["base_weights"], weights_only=True), strict=False)
    adapters.init(model)
    model.eval()
    input_ids = torch.tensor(spec["input_ids"])
    out = {}

    # (a) what madx saved
    name = model.load_adapter(spec["madx_lang"], use_safetensors=True)
    tokenizer = model.load_embeddings(spec["madx_embeddings"], "qad")
    model.set_active_adapters(name)
    out["madx.hidden"] = hidden(model, input_ids)
    out["madx.tokenizer_ids"] = torch.tensor(tokenizer(spec["text"], add_special_tokens=True)["input_ids"])
    out["madx.tokenizer_size"] = torch.tensor(len(tokenizer))
    model.set_active_adapters(None)
    model.delete_adapter(name)
    model.set_active_embeddings("default")

    # (b) AdapterHub's own
    base_tokenizer = transformers.AutoTokenizer.from_pretrained(spec["base_tokenizer"])
    model.add_embeddings("ah", tokenizer, reference_embedding="default", reference_tokenizer=base_tokenizer)
    out["hub.init"] = model.get_input_embeddings().weight.detach().clone()
    torch.manual_seed(spec["seed"])
    with torch.no_grad():
        model.get_input_embeddings().weight.add_(0.5 * torch.randn_like(model.get_input_embeddings().weight))
    out["hub.hidden"] = hidden(model, input_ids)
    model.save_embeddings(spec["hub_embeddings"], "ah", tokenizer)
    torch.save(out, spec["out"])


if __name__ == "__main__":
    main(sys.argv[1])
