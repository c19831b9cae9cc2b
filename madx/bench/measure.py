"""`madx bench`: throughput, model FLOP utilisation and memory of madx's own training and inference paths.

Everything is built from a shape in memory (nothing downloaded) and runs through the code the
commands use: the same objectives, optimizer step, frozen-base casting and batch makers.
FLOPs per token follow ../shared/bench/README.md (the AdapterHub anchor's formulas): forward
2N + attention; the backward through a frozen base about the same again (activation gradients
only); the MLM head 2·d·(d+V) per *predicted* token each way.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import transformers

from ..adapters.config import LANGUAGE_ADAPTER, TASK_ADAPTER
from ..adapters.model import activate, add_adapter, count_parameters, train_adapters
from ..core.settings import TrainSettings
from ..core.tensors import HALF_DTYPES
from ..data.hub import max_sequence_length
from ..tasks.families import TokenClassificationObjective
from ..training.accelerator import cast_frozen, compiled, make_accelerator, make_optimizer
from ..training.batching import shard
from ..training.loop import optimizer_step
from ..training.mlm import MaskedLMObjective, MLMBatches
from ..training.progress import PendingLosses
from ..training.task import TokenBatches
from .profiling import describe, profile_steps, sync
from .shapes import SHAPES, Shape

PEAK_BF16_FLOPS = 989e12  # H100/H200 SXM dense bf16


class _Tokens:
    """The few tokenizer facts the batch makers need, for a model with no tokenizer."""

    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size
        self.all_special_ids = [0, 1, 2, 3]
        self.mask_token_id = 4
        self.pad_token_id = 1

    def __len__(self):
        return self.vocab_size


def config_of(shape: Shape):
    return transformers.AutoConfig.for_model(
        shape.model_type, vocab_size=shape.vocab_size, hidden_size=shape.hidden_size,
        num_hidden_layers=shape.num_hidden_layers, num_attention_heads=shape.num_attention_heads,
        intermediate_size=shape.intermediate_size, max_position_embeddings=shape.max_position_embeddings,
        attn_implementation="sdpa")


def check_request(shape_name: str, batch: int, seq: int, steps: int, warmup: int) -> None:
    """Clear errors for a run that could not measure anything, before any model is built."""
    if shape_name not in SHAPES:
        raise ValueError(f"--shape {shape_name!r}: the shapes are {', '.join(SHAPES)}")
    for flag, value, least in (("--batch", batch, 1), ("--seq", seq, 2), ("--steps", steps, 1), ("--warmup", warmup, 0)):
        if value < least:
            raise ValueError(f"{flag} {value}: must be at least {least}")
    limit = max_sequence_length(config_of(SHAPES[shape_name]))
    if seq > limit:
        raise ValueError(f"--seq {seq} is beyond the {shape_name} shape's position limit of {limit} tokens; "
                         f"use --seq {limit} or less")


def build(shape: Shape, head: str):
    config = config_of(shape)
    if head == "mlm":
        return transformers.AutoModelForMaskedLM.from_config(config)
    if head == "token":
        config.num_labels = 7
        return transformers.AutoModelForTokenClassification.from_config(config)
    return transformers.AutoModel.from_config(config)


def flops_per_token(shape: Shape, seq: int, predicted_share: float) -> float:
    d, L, V = shape.hidden_size, shape.num_hidden_layers, shape.vocab_size
    n_enc = L * (4 * d * d + 2 * d * shape.intermediate_size)
    forward = 2 * n_enc + 4 * seq * d * L
    head = 2 * d * V + 2 * d * d
    return 2 * forward + predicted_share * 2 * head  # forward + activation-gradient backward


def device_name() -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def _timed(step, steps: int, warmup: int, device) -> float:
    for i in range(warmup):
        step(i)
    sync(device)
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    sync(device)
    return time.perf_counter() - start


PROFILED_STEPS = 3


def training_setup(shape: Shape, kind: str, batch: int, seq: int):
    """(model, objective, global_batch maker) on random tokens: an MLM language adapter ("lang") or a task
    adapter on Stack(lang, task) ("task"), made as `madx train-lang` / `train-task` make them."""
    rng, tokens = np.random.default_rng(0), _Tokens(shape.vocab_size)
    n = max(4 * batch, 256)  # distinct sequences to draw batches from
    if kind == "lang":
        model = build(shape, "mlm")
        add_adapter(model, "lang", LANGUAGE_ADAPTER)
        activate(model, "lang")
        train_adapters(model, "lang")
        blocks = rng.integers(5, shape.vocab_size, size=(n, seq), dtype=np.int32)
        return model, MaskedLMObjective(model), MLMBatches(blocks, tokens, batch, seed=0)
    model = _stacked(build(shape, "token"))
    train_adapters(model, "task")
    examples = [{"input_ids": rng.integers(5, shape.vocab_size, size=seq).tolist(),
                 "labels": rng.integers(0, 7, size=seq).tolist()} for _ in range(n)]
    return model, TokenClassificationObjective(model), TokenBatches(examples, batch, seed=0, pad_id=tokens.pad_token_id)


def bench_train(shape: Shape, kind: str, batch: int, seq: int, steps: int, warmup: int, compile_: str,
                mixed_precision: str, profile_dir: Path | None = None) -> dict:
    settings = TrainSettings(batch_size=batch, mixed_precision=mixed_precision, lr=1e-4, compile=compile_)
    accelerator = make_accelerator(settings)
    device = accelerator.device
    torch.manual_seed(0)
    model, objective, batches = training_setup(shape, kind, batch, seq)
    if device.type == "cuda":
        cast_frozen(model, mixed_precision)
    params = [p for p in objective.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, settings, device)
    wrapped, optimizer = accelerator.prepare(objective, optimizer)
    if settings.compile:
        wrapped = compiled(wrapped, settings.compile)
    wrapped.train()
    predicted, pending = [], PendingLosses()

    def step(i):
        global_batch, n_predicted = batches(i)
        predicted.append(n_predicted)
        loss_sum, _ = optimizer_step(wrapped, shard(global_batch, 1, 0, 1), 1.0 / max(n_predicted, 1), accelerator,
                                     settings, params, optimizer)
        pending.add(i, loss_sum, n_predicted, settings.lr)
        if (i + 1) % settings.log_every == 0:  # the training loop reads losses back at each log line: so does this
            pending.read()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = _timed(step, steps, warmup, device)
    tok_s = batch * seq * steps / seconds
    result = {"tok_s": tok_s, "trainable": count_parameters(model).trainable}
    if device.type == "cuda":
        result["peak_mem_gb"] = torch.cuda.max_memory_allocated() / 1e9
    if kind == "lang":
        share = float(np.mean(predicted)) / (batch * seq)
        result["tflops"] = tok_s * flops_per_token(shape, seq, share) / 1e12
        result["mfu"] = result["tflops"] * 1e12 / PEAK_BF16_FLOPS if device.type == "cuda" else None
    if profile_dir is not None:  # after the timed steps, so the profiler costs them nothing
        result["profile"] = profile_steps(step, warmup + steps, PROFILED_STEPS, device, profile_dir / f"{kind}_train.txt")
    return result


def _stacked(model):
    add_adapter(model, "lang", LANGUAGE_ADAPTER)
    add_adapter(model, "task", TASK_ADAPTER)
    activate(model, "lang", "task")
    return model


def bench_inference(shape: Shape, batch: int, seq: int, steps: int, warmup: int, mixed_precision: str,
                    compile_: str, profile_dir: Path | None = None) -> dict:
    """Forward-only tokens/s: bare encoder, the same encoder with Stack(lang, task), the evaluation model,
    each wholly in the half dtype with no autocast (as `madx evaluate` runs it)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = HALF_DTYPES.get(mixed_precision, torch.float32)
    ids = torch.randint(5, shape.vocab_size, (batch, seq), device=device)
    torch.manual_seed(0)
    models = {"bare": build(shape, "base"), "stack": _stacked(build(shape, "base")), "eval": _stacked(build(shape, "token"))}
    result = {}
    for name, model in models.items():
        model = model.to(device=device, dtype=dtype).eval()  # inference: everything in the autocast dtype
        if compile_:
            model = compiled(model, compile_)

        def forward(_i, model=model):
            with torch.inference_mode():
                model(input_ids=ids)

        result[f"{name}_infer_tok_s"] = batch * seq * steps / _timed(forward, steps, warmup, device)
        if profile_dir is not None:
            result.setdefault("profile", {})[name] = profile_steps(forward, 0, PROFILED_STEPS, device,
                                                                   profile_dir / f"{name}_inference.txt")
        del model
        _free()
    result["stack_over_bare"] = result["stack_infer_tok_s"] / result["bare_infer_tok_s"]
    return result


def run_bench(shape_name: str, batch: int, seq: int, steps: int, warmup: int, compile_: str = "",
              profile_dir: str | Path | None = None) -> dict:
    """compile_: "" (eager) or a torch.compile mode, for training and inference alike; profile_dir: also
    profile a few steps of each path after its timing (madx.bench.profiling) and write the tables there."""
    check_request(shape_name, batch, seq, steps, warmup)
    profile_dir = Path(profile_dir) if profile_dir is not None else None
    shape = SHAPES[shape_name]
    cuda = torch.cuda.is_available()
    mixed_precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "no"
    out = {"shape": shape_name, "batch": batch, "seq": seq, "steps": steps, "mixed_precision": mixed_precision,
           "device": device_name(), "torch": torch.__version__,
           "transformers": transformers.__version__, "compile": compile_}
    out["lang_train"] = bench_train(shape, "lang", batch, seq, steps, warmup, compile_, mixed_precision, profile_dir)
    _free()
    out["task_train"] = bench_train(shape, "task", batch, seq, steps, warmup, compile_, mixed_precision, profile_dir)
    _free()
    out["inference"] = bench_inference(shape, batch, seq, steps, warmup, mixed_precision, compile_, profile_dir)
    return out


def _free():
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def flop_rate(tflops: float) -> str:
    return f"{tflops:.1f} TFLOP/s" if tflops >= 1 else f"{1000 * tflops:.1f} GFLOP/s"


def table(result: dict) -> str:
    rows = [
        ("language-adapter training (MLM, sparse head)", f"{result['lang_train']['tok_s']:,.0f} tok/s"),
        ("  model FLOP/s", flop_rate(result["lang_train"]["tflops"])
         + (f" ({100 * result['lang_train']['mfu']:.1f}% MFU)" if result["lang_train"].get("mfu") else "")),
        ("  peak memory", f"{result['lang_train']['peak_mem_gb']:.1f} GB" if "peak_mem_gb" in result["lang_train"]
         else "n/a (CPU)"),
        ("task-adapter training (Stack(lang, task))", f"{result['task_train']['tok_s']:,.0f} tok/s"),
        ("evaluation (token classifier, Stack)", f"{result['inference']['eval_infer_tok_s']:,.0f} tok/s"),
        ("bare encoder inference", f"{result['inference']['bare_infer_tok_s']:,.0f} tok/s"),
        ("Stack(lang, task) inference", f"{result['inference']['stack_infer_tok_s']:,.0f} tok/s "
         f"({result['inference']['stack_over_bare']:.2f}x bare)"),
    ]
    precision = "fp32" if result["mixed_precision"] == "no" else result["mixed_precision"]
    head = (f"madx bench: {result['shape']} shape, batch {result['batch']} x seq {result['seq']}, "
            f"{precision}, {result['device']}, torch {result['torch']}, "
            f"{'torch.compile mode ' + result['compile'] if result['compile'] else 'eager'}")
    width = max(len(r[0]) for r in rows)
    profiles = [("lang_train", result["lang_train"].get("profile")), ("task_train", result["task_train"].get("profile")),
                *result["inference"].get("profile", {}).items()]
    return "\n".join([head] + [f"  {name:<{width}}  {value}" for name, value in rows]
                     + [describe(name, summary) for name, summary in profiles if summary])


def finite(result: dict) -> bool:
    values = [v for section in ("lang_train", "task_train", "inference") for v in result[section].values()
              if isinstance(v, float)]  # the figures; profile summaries are dicts
    return all(math.isfinite(v) and v > 0 for v in values)


def dumps(result: dict) -> str:
    return json.dumps(result, indent=2)


# the targets against AdapterHub (../shared/bench/anchor_adapterhub.py), as (at least | at most, value)
TARGETS = {
    "lang_over_adapterhub_dense": ("at least", 3.0),
    "lang_over_adapterhub_masked": ("at least", 1.3),
    "mfu": ("at least", 0.35),
    "memory_over_adapterhub": ("at most", 0.5),
    "stack_over_bare": ("at least", 0.9),
}
ANCHOR_KEYS = ("device", "batch", "seq", "adapterhub_lang_dense_tok_s", "adapterhub_lang_sparse_tok_s",
               "bare_infer_tok_s", "stack_infer_tok_s")


def read_anchor(path: str | Path, batch: int, seq: int) -> dict:
    """The anchor's JSON, checked before any measurement: its keys, this machine's device, the same batch
    and sequence length."""
    path = Path(path)
    try:
        anchor = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"--anchor {path}: not a readable JSON file ({error}); give the output of "
                         "`python anchor_adapterhub.py > anchor.json`") from None
    missing = [key for key in ANCHOR_KEYS if key not in anchor]
    if missing:
        raise ValueError(f"--anchor {path}: no {', '.join(missing)}; is it the output of anchor_adapterhub.py?")
    if (anchor["batch"], anchor["seq"]) != (batch, seq):
        raise ValueError(f"--anchor {path} measured batch {anchor['batch']} x seq {anchor['seq']}, this run batch "
                         f"{batch} x seq {seq}; compare the same shape (anchor: --batch/--seq, --tiny for the tiny shape)")
    if anchor["device"] != device_name():
        raise ValueError(f"--anchor {path} ran on {anchor['device']!r}, this machine is {device_name()!r}: "
                         "ratios only mean something on one machine; run the anchor here, in the same session")
    return anchor


def versus_anchor(result: dict, anchor: dict) -> dict:
    """madx over AdapterHub, measured on the same machine (read_anchor checks): the ratios the targets are about."""
    lang, inference = result["lang_train"], result["inference"]
    out = {
        "lang_over_adapterhub_dense": lang["tok_s"] / anchor["adapterhub_lang_dense_tok_s"],
        "lang_over_adapterhub_masked": lang["tok_s"] / anchor["adapterhub_lang_sparse_tok_s"],
        "stack_over_bare": inference["stack_over_bare"],
        "adapterhub_stack_over_bare": anchor["stack_infer_tok_s"] / anchor["bare_infer_tok_s"],
    }
    if lang.get("mfu") is not None:
        out["mfu"] = lang["mfu"]
    if "peak_mem_gb" in lang and anchor.get("adapterhub_peak_mem_gb"):
        out["memory_over_adapterhub"] = lang["peak_mem_gb"] / anchor["adapterhub_peak_mem_gb"]
    out["targets_met"] = {key: _met(key, out[key]) for key in TARGETS if key in out}
    return out


def _met(key: str, value: float) -> bool:
    bound, target = TARGETS[key]
    return value >= target if bound == "at least" else value <= target


def comparison_table(result: dict, anchor: dict, ratios: dict) -> str:
    """Markdown rows for BENCHMARKS.md: AdapterHub and madx side by side, ratio, target, met."""
    lang, inference = result["lang_train"], result["inference"]

    def met(key):
        return ("yes" if ratios["targets_met"][key] else "**no**") if key in ratios["targets_met"] else "–"

    def target(key):
        bound, value = TARGETS[key]
        sign = "≥" if bound == "at least" else "≤"
        return f"{sign}{value:.0%}" if key == "mfu" else f"{sign}{value:g}x"

    ah_mfu = anchor.get("adapterhub_lang_sparse_tflops", 0) * 1e12 / PEAK_BF16_FLOPS
    rows = [
        ("LA training vs dense head, tok/s", f"{anchor['adapterhub_lang_dense_tok_s']:,.0f}", f"{lang['tok_s']:,.0f}",
         f"{ratios['lang_over_adapterhub_dense']:.2f}x", target("lang_over_adapterhub_dense"),
         met("lang_over_adapterhub_dense")),
        ("LA training vs masked-only head, tok/s", f"{anchor['adapterhub_lang_sparse_tok_s']:,.0f}", f"{lang['tok_s']:,.0f}",
         f"{ratios['lang_over_adapterhub_masked']:.2f}x", target("lang_over_adapterhub_masked"),
         met("lang_over_adapterhub_masked")),
        ("LA training MFU", f"{100 * ah_mfu:.1f}% (masked-only)" if "mfu" in ratios else "–",
         f"{100 * ratios['mfu']:.1f}%" if "mfu" in ratios else "– (CPU)", "", target("mfu"), met("mfu")),
        ("LA training peak memory", f"{anchor['adapterhub_peak_mem_gb']:.1f} GB" if "memory_over_adapterhub" in ratios
         else "–", f"{lang['peak_mem_gb']:.1f} GB" if "peak_mem_gb" in lang else "– (CPU)",
         f"{ratios['memory_over_adapterhub']:.2f}x" if "memory_over_adapterhub" in ratios else "",
         target("memory_over_adapterhub"), met("memory_over_adapterhub")),
        ("bare encoder inference, tok/s", f"{anchor['bare_infer_tok_s']:,.0f}", f"{inference['bare_infer_tok_s']:,.0f}",
         "", "", ""),
        ("Stack(lang, task) inference, tok/s", f"{anchor['stack_infer_tok_s']:,.0f} "
         f"({ratios['adapterhub_stack_over_bare']:.2f}x bare)", f"{inference['stack_infer_tok_s']:,.0f} "
         f"({ratios['stack_over_bare']:.2f}x bare)", "", target("stack_over_bare") + " bare", met("stack_over_bare")),
    ]
    lines = ["| what | AdapterHub | madx | madx / AdapterHub | target | met |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if result.get("shape") != "xlmr-base" or result["device"] == "cpu":
        lines.append("\n(the targets are for the xlmr-base shape, batch 64 x seq 256, bf16 on one H100/H200; "
                     "elsewhere they are shown for reference only)")
    return "\n".join(lines)

