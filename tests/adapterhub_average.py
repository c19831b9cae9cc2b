"""The AdapterHub side of the Average interop test; runs in its own venv (adapters pins transformers 4.57).

Usage: python adapterhub_average.py SPEC.json
Loads the base weights and the adapters madx saved, and records the last hidden states under AdapterHub's
Average of the language adapters (alone, and with a task adapter stacked on it) with the weights the spec gives
(normalize_weights=False: see test_interop_average.py).
"""

import json
import sys

import adapters
import torch
import transformers
from adapters.composition import Average, Stack


def main(spec_file):
    spec = json.load(open(spec_file))
    model = transformers.XLMRobertaForTokenClassification(transformers.XLMRobertaConfig(**spec["config"]))
    missing, unexpected = model.load_state_dict(torch.load(spec["base_weights"], weights_only=True), strict=False)
    assert not [k for k in missing if "position_ids" not in k] and not unexpected, (missing, unexpected)
    adapters.init(model)
    model.eval()
    for directory in spec["adapters"]:
        model.load_adapter(directory, use_safetensors=True)
    batch = {k: torch.tensor(v) for k, v in spec["batch"].items()}
    results = {}
    for case, (names, weights, task) in spec["cases"].items():
        average = Average(*names, weights=weights, normalize_weights=False)
        model.set_active_adapters(Stack(average, task) if task else average)
        with torch.no_grad():
            results[case] = model(**batch, output_hidden_states=True).hidden_states[-1].contiguous()
    torch.save(results, spec["out"])


if __name__ == "__main__":
    main(sys.argv[1])
    print("adapters", adapters.__version__, "transformers", transformers.__version__)
