"""Average against the real `adapters` library: madx's Average of language adapters (alone, and under a task
adapter) gives AdapterHub's Average's hidden states on the same adapters.

AdapterHub 1.3.0 computes its Average as mean_i(w_i · h_i) with normalised weights w (methods/bottleneck.py,
`mean`), so with n adapters its residual stream is Σ w_i h_i / n: uniform weights over two adapters halve it.
madx's Average is the weighted mean Σ w_i h_i, which AdapterHub computes with weights n·w_i and
normalize_weights=False; that is what it is compared with (a layer that leaves an adapter out averages the others
in both). The comparison uses adapters without invertible
adapters: AdapterHub's Average applies the first adapter's alone, madx averages them (test_averaging.py)."""

import json
import subprocess
from pathlib import Path

import pytest
import torch
import transformers

import madx
from tiny import INTEROP_BATCH as BATCH, INTEROP_CONFIG as CONFIG, madx_outputs, randomize_adapter

HERE = Path(__file__).parent
LANG = madx.AdapterConfig(reduction_factor=2)  # MAD-X's language adapter without its invertible adapter
# case -> (averaged adapters, madx's weights, the task adapter on top or None)
CASES = {"uniform": (["hi", "ar", "ur"], None, None), "weighted": (["hi", "ar"], [1, 3], None),
         "with_leave_out": (["hi", "fa"], [2, 1], None), "under_task": (["hi", "ar", "ur"], [1, 1, 2], "ner")}
TOL = 1e-5


@pytest.fixture(scope="module")
def interop(tmp_path_factory, adapterhub_python):
    root = tmp_path_factory.mktemp("average_interop")
    torch.manual_seed(0)
    model = transformers.XLMRobertaForTokenClassification(transformers.XLMRobertaConfig(**CONFIG)).eval()
    torch.save(model.state_dict(), root / "base.pt")
    for i, name in enumerate(["hi", "ar", "ur", "fa"]):
        madx.add_adapter(model, name, LANG if name != "fa" else madx.AdapterConfig(reduction_factor=2, leave_out=(1,)))
        randomize_adapter(model, name, 40 + i)
        madx.save_adapter(model, name, root / name)
    madx.add_adapter(model, "ner", madx.TASK_ADAPTER)
    randomize_adapter(model, "ner", 50)
    madx.save_adapter(model, "ner", root / "ner")
    cases = {}
    for case, (names, weights, task) in CASES.items():
        average = madx.Average(*names, weights=weights)
        cases[case] = (names, [len(names) * w for w in average.weights], task)
    spec = dict(config=CONFIG, base_weights=str(root / "base.pt"), batch=BATCH, cases=cases, out=str(root / "hub.pt"),
                adapters=[str(root / n) for n in ["hi", "ar", "ur", "fa", "ner"]])
    (root / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run([adapterhub_python, str(HERE / "adapterhub_average.py"), str(root / "spec.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return model, torch.load(root / "hub.pt", weights_only=True)


@pytest.mark.parametrize("case", CASES)
def test_madx_average_equals_adapterhubs(interop, case):
    model, hub = interop
    names, weights, task = CASES[case]
    setup = (madx.Average(*names, weights=weights), *([task] if task else []))
    hidden, _ = madx_outputs(model, BATCH, *setup)
    assert (hidden - hub[case]).abs().max() <= TOL
    single, _ = madx_outputs(model, BATCH, names[0], *([task] if task else []))
    assert (hidden - single).abs().max() > 1e-2  # the average is not its first adapter alone
