"""Task training (token classification) for the madx, task_only and full_ft setups, and prediction."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from . import hf
from .config import TASK_ADAPTER, AdapterConfig
from .io import load_adapter, write_adapter_files
from .labelled import IGNORE, check_labels, encode, label_names_of, read_labelled
from .metrics import TASK_TYPES, main_metric, sequence_metrics
from .model import activate, add_adapter, count_parameters, task_head, train_adapters
from .setups import TRAIN_LANG_ADAPTER, TRAIN_SETUPS
from .accelerator import HALF_DTYPES, cast_frozen, make_accelerator
from .batching import StepIndices, without_full_mask
from .files import staged_dir, write_text, write_with
from .settings import TaskTraining
from .train import fit, settings_dict

log = logging.getLogger(__name__)
HEAD_CONFIG = "head_config.json"
HEAD_WEIGHTS = "head.safetensors"
FULL_MODEL_DIR = "model"


class TokenClassificationObjective(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, labels, attention_mask=None) -> torch.Tensor:
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, T, L)
        return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE, reduction="sum")


def pad_batch(examples: list[dict], pad_id: int) -> dict:
    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[i, :n] = torch.tensor(e["input_ids"])
        labels[i, :n] = torch.tensor(e["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class TokenBatches:
    """global_batch(step) for `train.fit` over encoded sentences.

    group_by_length: the examples of `window` consecutive steps (the same random draw as without it)
    are sorted by length, cut into batches, and those batches taken in a seeded random order, so a
    batch holds sentences of similar length and little padding. Still a pure function of (seed, step).
    """

    def __init__(self, examples: list[dict], batch_size: int, seed: int, pad_id: int, group_by_length: bool = True,
                 window: int = 50):
        self.examples, self.pad_id, self.seed = examples, pad_id, seed
        self.batch_size, self.group_by_length, self.window = batch_size, group_by_length, window
        self.indices = StepIndices(len(examples), batch_size, seed)
        self._grouped: tuple[int, list] | None = None  # (window index, its batches)

    def step_indices(self, step: int) -> list[int]:
        if not self.group_by_length:
            return self.indices(step)
        w = step // self.window
        if self._grouped is None or self._grouped[0] != w:
            drawn = [i for s in range(w * self.window, (w + 1) * self.window) for i in self.indices(s)]
            drawn.sort(key=lambda i: len(self.examples[i]["input_ids"]))  # stable: ties keep the random draw
            batches = [drawn[b : b + self.batch_size] for b in range(0, len(drawn), self.batch_size)]
            order = torch.randperm(len(batches), generator=torch.Generator().manual_seed(self.seed * 7_919 + w))
            self._grouped = (w, [batches[j] for j in order.tolist()])
        return self._grouped[1][step % self.window]

    def __call__(self, step: int) -> tuple[dict, int]:
        batch = pad_batch([self.examples[i] for i in self.step_indices(step)], self.pad_id)
        return batch, int((batch["labels"] != IGNORE).sum())


@torch.no_grad()
def predict(model: nn.Module, examples: list[dict], label_names: list[str], pad_id: int, batch_size: int = 64,
            device=None, mixed_precision: str = "no") -> list[list[str]]:
    """Word-level predictions (first sub-token of each word); words cut off by max_length get 'O'.

    mixed_precision "bf16"/"fp16": a model wholly in that dtype (`madx evaluate` casts it so) runs as it
    is; one whose frozen base alone was cast (dev evaluation in task training: adapters and head stay
    fp32) runs under autocast, as training does."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    dtype = HALF_DTYPES.get(mixed_precision)
    mixed = dtype is not None and any(p.is_floating_point() and p.dtype != dtype for p in model.parameters())
    was_training = model.training
    model.eval()
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))  # length-grouped batches
    out: list = [None] * len(examples)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = without_full_mask(pad_batch([examples[i] for i in chunk], pad_id))
        with torch.autocast(device.type, dtype=dtype, enabled=mixed):
            logits = model(**{k: v.to(device) for k, v in batch.items() if k != "labels"}).logits
        best = logits.argmax(-1).cpu()
        for row, i in enumerate(chunk):
            first = torch.tensor(examples[i]["first"] + [False] * (best.shape[1] - len(examples[i]["first"])))
            words = [label_names[j] for j in best[row][first].tolist()]
            out[i] = words + ["O"] * (examples[i]["n_words"] - len(words))
    model.train(was_training)
    return out


def save_head(model: nn.Module, directory: Path, label_names: list[str], task_type: str) -> None:
    head = task_head(model)
    weights = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    write_with(directory / HEAD_WEIGHTS, lambda tmp: save_file(weights, str(tmp)))
    write_text(directory / HEAD_CONFIG, json.dumps(
        {"task_type": task_type, "label_names": label_names, "num_labels": len(label_names),
         "model_type": model.config.model_type, "hidden_size": model.config.hidden_size}, indent=2) + "\n")


def read_head_config(task_dir: Path) -> dict:
    path = Path(task_dir) / HEAD_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; {task_dir} is not a finished madx train-task output")
    return json.loads(path.read_text())


def load_head(model: nn.Module, task_dir: Path) -> None:
    weights = load_file(str(Path(task_dir) / HEAD_WEIGHTS))
    task_head(model).load_state_dict(weights)


class BestOnDev:
    """The dev evaluation `fit` calls: scores the model on the dev set and keeps the trainable weights of the best
    score so far in `path` (in the work dir, so a resumed run still knows its best); `restore` loads them back."""

    def __init__(self, model: nn.Module, dev_examples: list[dict], gold: list[list[str]], label_names: list[str],
                 pad_id: int, task_type: str, path: Path, accelerator, mixed_precision: str):
        self.model, self.dev_examples, self.gold, self.label_names = model, dev_examples, gold, label_names
        self.pad_id, self.path, self.accelerator, self.mixed_precision = pad_id, path, accelerator, mixed_precision
        self.task_type, self.metric = task_type, main_metric(task_type)
        # a resumed run starts from the best it had saved; every process scores alike, so each keeps it in memory
        self.best_score = self.best()["score"] if path.exists() else -1.0

    def best(self) -> dict:
        return torch.load(self.path, weights_only=True)

    def __call__(self, step: int) -> dict:
        pred = predict(self.model, self.dev_examples, self.label_names, self.pad_id, device=self.accelerator.device,
                       mixed_precision=self.mixed_precision)
        score = sequence_metrics(self.task_type, self.gold, pred)[self.metric]
        if score > self.best_score:
            self.best_score = score
            if self.accelerator.is_main_process:
                weights = {n: p.detach().cpu().clone() for n, p in self.model.named_parameters() if p.requires_grad}
                write_with(self.path, lambda tmp: torch.save({"score": score, "step": step, "weights": weights}, tmp))
        self.accelerator.wait_for_everyone()
        return {f"dev_{self.metric}": round(score, 6)}

    def restore(self) -> dict:
        """Loads the best weights into the model; returns {"score", "step", "weights"}."""
        best = self.best()
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in best["weights"].items():
                params[name].copy_(value)
        return best


def check_train_task_args(setup: str, task_type: str, lang_adapter) -> None:
    if setup not in TRAIN_SETUPS:
        raise ValueError(f"setup {setup!r}; train-task setups are {TRAIN_SETUPS}")
    if task_type not in TASK_TYPES:
        raise ValueError(f"task type {task_type!r}; use one of {TASK_TYPES}")
    if (TRAIN_LANG_ADAPTER[setup] is not None) != (lang_adapter is not None):
        raise ValueError(f"setup {setup} {'needs' if TRAIN_LANG_ADAPTER[setup] else 'takes no'} language adapter "
                         "(lang_adapter); setups trained on the source language adapter: "
                         f"{[s for s, role in TRAIN_LANG_ADAPTER.items() if role]}")


def build_task_model(base_model: str, task: str, setup: str, label_names: list[str], lang_adapter, adapter_config,
                     trust_remote_code: bool) -> nn.Module:
    """The base with a token-classification head: full_ft trains everything; task_only adds the task adapter;
    madx stacks it on the source language adapter. Only the task adapter and head train in the adapter setups."""
    model = hf.load_token_classifier(base_model, label_names, trust_remote_code=trust_remote_code)
    if setup == "full_ft":
        return model
    lang = load_adapter(model, lang_adapter) if lang_adapter is not None else None
    add_adapter(model, task, adapter_config)
    activate(model, *([lang] if lang else []), task)
    train_adapters(model, task)
    return model


def train_task(
    base_model: str,
    task: str,
    setup: str,
    train_data,
    dev_data,
    output: str | Path,
    *,
    task_type: str = "ner",
    lang_adapter: str | Path | None = None,
    adapter_config: AdapterConfig = TASK_ADAPTER,
    settings: TaskTraining = TaskTraining(),
    trust_remote_code: bool = False,
) -> Path:
    output = Path(output)
    check_train_task_args(setup, task_type, lang_adapter)
    config = hf.load_config(base_model, trust_remote_code=trust_remote_code)
    hf.check_sequence_length(config, settings.max_length, base_model, key="max_length")
    train_sentences, hub_names = read_labelled(train_data)
    dev_sentences, _ = read_labelled(dev_data)
    label_names = label_names_of(train_sentences, hub_names)
    check_labels(dev_sentences, label_names)
    accelerator = make_accelerator(settings)
    tokenizer = hf.load_tokenizer(base_model, trust_remote_code=trust_remote_code)
    train_examples = encode(tokenizer, train_sentences, label_names, settings.max_length,
                            settings.label_all_subtokens)
    dev_examples = encode(tokenizer, dev_sentences, label_names, settings.max_length)

    torch.manual_seed(settings.seed)
    model = build_task_model(base_model, task, setup, label_names, lang_adapter, adapter_config, trust_remote_code)
    if setup != "full_ft" and accelerator.device.type == "cuda":
        cast_frozen(model, settings.mixed_precision)
    log.info("%s/%s: %s", task, setup, count_parameters(model))

    work_dir = output.with_name(output.name + ".work")
    dev = BestOnDev(model, dev_examples, [s.tags for s in dev_sentences], label_names, tokenizer.pad_token_id,
                    task_type, work_dir / "best.pt", accelerator, settings.mixed_precision)
    batches = TokenBatches(train_examples, settings.batch_size, settings.seed, tokenizer.pad_token_id,
                           group_by_length=settings.group_by_length)
    fit(TokenClassificationObjective(model), batches, settings, work_dir, accelerator, evaluate=dev)
    best = dev.restore()
    accelerator.wait_for_everyone()  # every process has read the best weights before the work dir goes
    if accelerator.is_main_process:
        record = {
            "base_model": base_model, "task": task, "setup": setup, "task_type": task_type,
            "lang_adapter": str(lang_adapter) if lang_adapter else None, "train": str(train_data),
            "dev": str(dev_data), "max_length": settings.max_length, "group_by_length": settings.group_by_length,
            "label_names": label_names, f"best_dev_{dev.metric}": best["score"], "best_step": best["step"],
            "settings": settings_dict(settings),
        }
        write_task_output(model, task, setup, base_model, label_names, task_type, work_dir, output, record)
        if not settings.keep_checkpoints:
            shutil.rmtree(work_dir, ignore_errors=True)
        log.info("%s/%s: best dev %s %.4f at step %d -> %s", task, setup, dev.metric, best["score"], best["step"],
                 output)
    accelerator.wait_for_everyone()
    return output


def write_task_output(model: nn.Module, task: str, setup: str, base_model: str, label_names: list[str],
                      task_type: str, work_dir: Path, output: Path, record: dict) -> None:
    """Task adapter (or, for full_ft, the whole model), head, train log and task.json, staged then renamed into
    place, so `output` is either the old result or the whole new one."""
    with staged_dir(output) as staging:
        if setup == "full_ft":
            model.save_pretrained(staging / FULL_MODEL_DIR)
        else:
            write_adapter_files(model, task, staging, model_name=base_model)
        save_head(model, staging, label_names, task_type)
        shutil.copy(work_dir / "train_log.jsonl", staging / "train_log.jsonl")
        write_text(staging / "task.json", json.dumps(record, indent=2) + "\n")
