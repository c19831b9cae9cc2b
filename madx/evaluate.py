"""Zero-shot evaluation of one (task, language, setup, seed) on a target test set."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
import transformers

from . import hf
from .io import load_adapter
from .labelled import check_labels, encode, read_labelled
from .metrics import sequence_metrics
from .model import activate
from .setups import EVAL_LANG_ADAPTER, EVAL_SETUPS
from .task import FULL_MODEL_DIR, load_head, predict, read_head_config
from .accelerator import HALF_DTYPES, check_mixed_precision
from .files import write_text
from .settings import MIXED_PRECISION

log = logging.getLogger(__name__)


def inference_precision(mixed_precision: str) -> str:
    """"auto" -> "bf16" on a CUDA GPU with bf16, else "no"; anything else is checked against this machine."""
    if mixed_precision == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    if mixed_precision not in MIXED_PRECISION:
        raise ValueError(f"mixed_precision={mixed_precision!r}; use auto or one of {MIXED_PRECISION}")
    check_mixed_precision(mixed_precision)
    return mixed_precision


def build_eval_model(base_model: str, setup: str, task_dir: Path, label_names: list[str], lang_adapter=None,
                     trust_remote_code: bool = False):
    """The model a setup evaluates, and which adapters it stacks (for the record)."""
    if setup == "full_ft":
        model = transformers.AutoModelForTokenClassification.from_pretrained(task_dir / FULL_MODEL_DIR)
        return model, {"full_model": str(task_dir / FULL_MODEL_DIR)}
    model = hf.load_token_classifier(base_model, label_names, trust_remote_code=trust_remote_code)
    load_head(model, task_dir)
    used = {}
    stack = []
    if EVAL_LANG_ADAPTER[setup] is not None:
        if lang_adapter is None:
            raise ValueError(f"setup {setup} needs a language adapter")
        stack.append(load_adapter(model, lang_adapter))
        used["lang_adapter"] = str(lang_adapter)
    stack.append(load_adapter(model, task_dir))
    used["task_adapter"] = str(task_dir)
    used["stack"] = stack
    activate(model, *stack)
    return model, used


def evaluate(
    base_model: str,
    setup: str,
    task_dir: str | Path,
    test_data,
    output: str | Path,
    *,
    lang: str,
    task: str,
    source: str | None = None,
    seed: int | None = None,
    lang_adapter: str | Path | None = None,
    batch_size: int = 64,
    mixed_precision: str = "auto",
    trust_remote_code: bool = False,
) -> dict:
    """Evaluate one setup on a test set; mixed_precision "auto" is bf16 on a GPU that has it, fp32 elsewhere."""
    if setup not in EVAL_SETUPS:
        raise ValueError(f"setup {setup!r}; evaluation setups are {EVAL_SETUPS}")
    precision = inference_precision(mixed_precision)
    task_dir = Path(task_dir)
    head = read_head_config(task_dir)
    task_info = json.loads((task_dir / "task.json").read_text())
    label_names, task_type = head["label_names"], head["task_type"]
    sentences, _ = read_labelled(test_data)
    check_labels(sentences, label_names)
    tokenizer = hf.load_tokenizer(base_model, trust_remote_code=trust_remote_code)
    examples = encode(tokenizer, sentences, label_names, task_info["max_length"])
    model, used = build_eval_model(base_model, setup, task_dir, label_names, lang_adapter, trust_remote_code)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device=device, dtype=HALF_DTYPES.get(precision))  # inference only: no fp32 master copy needed
    pred = predict(model, examples, label_names, tokenizer.pad_token_id, batch_size=batch_size, device=device,
                   mixed_precision=precision)
    truncated = sum(len(e["labels"]) and e["n_words"] > sum(e["first"]) for e in examples)
    result = {
        "task": task, "source": source, "lang": lang, "setup": setup, "seed": seed, "task_type": task_type,
        **sequence_metrics(task_type, [s.tags for s in sentences], pred),
        "truncated_sentences": int(truncated), "mixed_precision": precision, "base_model": base_model,
        "test_data": str(test_data), **used,
    }
    write_text(Path(output), json.dumps(result, indent=2) + "\n")
    log.info("%s %s->%s %s seed %s: %s", task, source or "?", lang, setup, seed,
             {k: round(v, 4) for k, v in result.items() if k in ("f1", "precision", "recall", "accuracy")})
    return result
