"""`madx bench`: throughput, model FLOP utilisation and memory of madx's own training and inference paths.

Everything is built from a shape in memory (nothing downloaded) and runs through the code the
commands use: the same objectives, optimizer step, frozen-base casting and batch makers.
FLOPs per token: the encoder's forward 2N + attention (N its weights' multiply-adds per token); the
backward through a frozen base about the same again (activation gradients only); the MLM head
2·d·(d+V) per *predicted* token each way. MFU divides them by the dense peak of the device found
(madx/bench/peaks.py), and is left out where that peak is unknown.
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
from ..adapters.counting import count_parameters
from ..adapters.model import activate, add_adapter, train_adapters
from ..core.errors import MadxError
from ..core.settings import TrainSettings
from ..core.tensors import HALF_DTYPES
from ..data.hub import max_sequence_length
from ..tasks.tagging import TokenClassificationObjective
from ..training.accelerator import cast_frozen, compiled, make_accelerator, make_optimizer
from ..training.batching import shard
from ..training.loop import optimizer_step
from ..training.mlm import MaskedLMObjective, MLMBatches
from ..training.progress import PendingLosses
from ..training.task import TokenBatches
from .peaks import matmul_precision, peak_flops, unknown_peak
from .profiling import describe, profile_steps, sync
from .shapes import SHAPES, Shape


class BenchError(MadxError, ValueError):
    """A benchmark that cannot be run or compared as asked (a request no shape can take, a peer's figures from
    another device or shape, a figure that is not finite)."""


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
        raise BenchError(f"--shape {shape_name!r}: the shapes are {', '.join(SHAPES)}")
    for flag, value, least in (("--batch", batch, 1), ("--seq", seq, 2), ("--steps", steps, 1), ("--warmup", warmup, 0)):
        if value < least:
            raise BenchError(f"{flag} {value}: must be at least {least}")
    limit = max_sequence_length(config_of(SHAPES[shape_name]))
    if seq > limit:
        raise BenchError(f"--seq {seq} is beyond the {shape_name} shape's position limit of {limit} tokens; "
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
    return with_mfu(out, matmul_precision(mixed_precision))


def with_mfu(result: dict, precision: str) -> dict:
    """`result` with the precision its GEMMs ran in, the device's dense peak in it (None where the table has
    none) and the language-adapter training's MFU against that peak (None likewise)."""
    peak = peak_flops(result["device"], precision)
    result.update(matmul_precision=precision, peak_tflops=peak / 1e12 if peak else None)
    result["lang_train"]["mfu"] = result["lang_train"]["tflops"] * 1e12 / peak if peak else None
    return result


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
        ("  model FLOP/s", flop_rate(result["lang_train"]["tflops"])),
        ("  MFU", mfu_text(result)),
        ("  peak memory", f"{result['lang_train']['peak_mem_gb']:.1f} GB" if "peak_mem_gb" in result["lang_train"]
         else "n/a (CPU)"),
        ("task-adapter training (Stack(lang, task))", f"{result['task_train']['tok_s']:,.0f} tok/s"),
        ("evaluation (token classifier, Stack)", f"{result['inference']['eval_infer_tok_s']:,.0f} tok/s"),
        ("bare encoder inference", f"{result['inference']['bare_infer_tok_s']:,.0f} tok/s"),
        ("Stack(lang, task) inference", f"{result['inference']['stack_infer_tok_s']:,.0f} tok/s "
         f"({result['inference']['stack_over_bare']:.2f}x bare)"),
    ]
    head = (f"madx bench: {result['shape']} shape, batch {result['batch']} x seq {result['seq']}, "
            f"{result['matmul_precision']}, {result['device']}, torch {result['torch']}, "
            f"{'torch.compile mode ' + result['compile'] if result['compile'] else 'eager'}")
    width = max(len(r[0]) for r in rows)
    profiles = [("lang_train", result["lang_train"].get("profile")), ("task_train", result["task_train"].get("profile")),
                *result["inference"].get("profile", {}).items()]
    return "\n".join([head] + [f"  {name:<{width}}  {value}" for name, value in rows]
                     + [describe(name, summary) for name, summary in profiles if summary])


def mfu_text(result: dict) -> str:
    mfu, precision, device = result["lang_train"]["mfu"], result["matmul_precision"], result["device"]
    if mfu is None:
        return unknown_peak(device, precision)
    return f"{100 * mfu:.1f}% of {result['peak_tflops']:,.1f} TFLOP/s, the dense {precision} peak of {device}"


def finite(result: dict) -> bool:
    values = [v for section in ("lang_train", "task_train", "inference") for v in result[section].values()
              if isinstance(v, float)]  # the figures; profile summaries are dicts
    return all(math.isfinite(v) and v > 0 for v in values)


def dumps(result: dict) -> str:
    return json.dumps(result, indent=2)
