"""The training loop shared by language-adapter (MLM) and task training.

Batches are a pure function of (seed, step): every optimizer step takes the same global batch
whether it runs on 1 process or N, with or without gradient accumulation, and a resumed run
continues exactly where a checkpoint left it (RNG states included). Losses are sums over the
predicted tokens divided by the global count, so N processes compute the same gradient as one.
Losses stay on the device until a log line, evaluation or checkpoint reads them back (and stops
on a non-finite one), so the host never waits for the GPU between steps.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

log = logging.getLogger(__name__)
MIXED_PRECISION = ("no", "bf16", "fp16")
HALF_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# torch.compile modes; "reduce-overhead" adds CUDA graphs, which fixed-shape MLM batches allow
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")


class TrainingError(RuntimeError):
    pass


@dataclass(frozen=True)
class TrainSettings:
    max_steps: int = 1000
    batch_size: int = 32  # global batch per optimizer step: all processes and accumulation steps together
    grad_accum: int = 1  # micro-batches per optimizer step on each process
    lr: float = 1e-4
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 42
    mixed_precision: str = "no"  # "bf16" on GPUs that have it; "fp16"; "no"
    log_every: int = 10
    save_every: int = 500  # checkpoint interval (steps); a rerun resumes from the last one
    eval_every: int = 0  # task training: evaluate on dev every N steps (0: only at the end)
    keep_checkpoints: bool = False
    compile: str = ""  # "" (off) or a torch.compile mode (COMPILE_MODES); True means "default"

    def __post_init__(self):
        for key in ("max_steps", "batch_size", "grad_accum", "log_every", "save_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}={getattr(self, key)} must be at least 1")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision={self.mixed_precision!r}; use one of {MIXED_PRECISION}")
        if self.lr <= 0:
            raise ValueError(f"lr={self.lr} must be positive")
        if isinstance(self.compile, bool) or self.compile is None:
            object.__setattr__(self, "compile", "default" if self.compile else "")
        if self.compile and self.compile not in COMPILE_MODES:
            raise ValueError(f"compile={self.compile!r}; use true, false or one of {COMPILE_MODES}")
        if self.compile in CUDA_GRAPH_MODES and self.grad_accum > 1:
            # a CUDA graph replay reuses its output memory: gradients accumulated across replays would be overwritten
            raise ValueError(f"compile={self.compile!r} (CUDA graphs) needs grad_accum 1, got {self.grad_accum}; "
                             "use compile: default, or a smaller batch_size without accumulation")

    def micro_batch_size(self, world_size: int) -> int:
        per = self.batch_size / (world_size * self.grad_accum)
        if per != int(per):
            raise ValueError(
                f"batch_size={self.batch_size} does not split over {world_size} process(es) x grad_accum="
                f"{self.grad_accum}; make it a multiple of {world_size * self.grad_accum}"
            )
        return int(per)


def check_mixed_precision(mixed_precision: str) -> None:
    """Refuse, before any work, a precision this machine cannot run."""
    if mixed_precision == "bf16" and not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
        raise TrainingError(
            "mixed_precision=bf16 needs a CUDA GPU with bf16 support (Ampere or newer), and this machine has "
            f"{'a GPU without it' if torch.cuda.is_available() else 'no GPU'}; set mixed_precision: no (or fp16 on older GPUs)"
        )
    if mixed_precision == "fp16" and not torch.cuda.is_available():
        raise TrainingError("mixed_precision=fp16 needs a CUDA GPU; set mixed_precision: no on a CPU")


def make_accelerator(settings: TrainSettings):
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    check_mixed_precision(settings.mixed_precision)
    accelerator = Accelerator(
        mixed_precision=settings.mixed_precision,
        # our loss is already normalised for accumulation and processes
        gradient_accumulation_steps=1,
        kwargs_handlers=[DistributedDataParallelKwargs(broadcast_buffers=False)],
    )
    if settings.compile in CUDA_GRAPH_MODES and accelerator.num_processes > 1:
        raise TrainingError(f"compile={settings.compile!r} (CUDA graphs) runs on one process, not "
                            f"{accelerator.num_processes}; use compile: default or max-autotune-no-cudagraphs")
    return accelerator


def cast_frozen(model: nn.Module, mixed_precision: str) -> None:
    """Keep the frozen base in bf16/fp16 under mixed precision: it never updates, so it needs no fp32 copy
    and autocast no per-step cast. Trainable weights (adapters, heads) stay fp32 for the optimizer."""
    dtype = HALF_DTYPES.get(mixed_precision)
    if dtype is None:
        return
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad and param.is_floating_point():
                param.data = param.data.to(dtype)


# Before this release, Hugging Face's mask code builds a full (B, 1, T, T) attention mask whenever dynamo
# traces it, even for no mask at all, which keeps SDPA off its flash kernel in every compiled model.
COMPILE_MASK_FIX = (5, 24)


@functools.cache
def _warn_if_mask_unfixed(version: str) -> None:
    """Once per transformers version, however many modules are compiled."""
    if tuple(int(part) for part in version.split(".")[:2] if part.isdigit()) < COMPILE_MASK_FIX:
        log.warning("transformers %s builds a full attention mask under torch.compile, so attention runs without "
                    "flash; install transformers>=%d.%d (madx's requirement) for the fast compiled path",
                    version, *COMPILE_MASK_FIX)


def compiled(module: nn.Module, mode: str) -> nn.Module:
    """torch.compile with one of COMPILE_MODES."""
    import transformers

    _warn_if_mask_unfixed(transformers.__version__)
    return torch.compile(module, mode=None if mode == "default" else mode)


def make_optimizer(params: list, settings: "TrainSettings", device: torch.device):
    # fused AdamW: one kernel over the few trainable tensors instead of one per tensor
    return torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay,
                             fused=device.type == "cuda")


def without_full_mask(batch: dict) -> dict:
    """The batch without its attention mask when that masks nothing (checked on the host copy: no device sync).

    Hugging Face models skip an all-ones mask themselves in eager mode, but only by reading it on the
    device, and under torch.compile they build the full (B, 1, T, T) mask from it, which keeps SDPA off
    its flash kernel. No mask means the same attention."""
    mask = batch.get("attention_mask")
    if mask is None or not bool(mask.all()):
        return batch
    return {k: v for k, v in batch.items() if k != "attention_mask"}


def optimizer_step(wrapped, micro_batches: list, scale: float, accelerator, settings: "TrainSettings",
                   params: list, optimizer) -> tuple[torch.Tensor, int]:
    """Forward/backward over this process's micro-batches (gradient sync on the last), clip, step.
    Returns (summed loss on this process, tokens seen)."""
    loss_sum = torch.zeros((), device=accelerator.device)
    tokens = 0
    cuda = accelerator.device.type == "cuda"
    for i, micro in enumerate(micro_batches):
        tokens += int(micro["attention_mask"].sum())  # on the CPU copy: no device sync
        micro = without_full_mask(micro)
        # pinned host memory makes the copy truly asynchronous (a pageable one waits for the GPU to drain)
        micro = {k: (v.pin_memory() if cuda else v).to(accelerator.device, non_blocking=True) for k, v in micro.items()}
        last = i == len(micro_batches) - 1
        with accelerator.no_sync(wrapped) if not last and accelerator.num_processes > 1 else contextlib.nullcontext():
            with accelerator.autocast():
                loss = wrapped(**micro)
            accelerator.backward(loss * scale)
        loss_sum += loss.detach().float()
    if settings.max_grad_norm:
        accelerator.clip_grad_norm_(params, settings.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum, tokens


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


class StepIndices:
    """The global example indices of each optimizer step: consecutive slices of per-epoch shuffles."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self._epoch, self._order = None, None

    def __call__(self, step: int) -> list[int]:
        out = []
        for position in range(step * self.batch_size, (step + 1) * self.batch_size):
            epoch = position // self.n
            if epoch != self._epoch:
                self._epoch, self._order = epoch, epoch_order(self.n, self.seed, epoch)
            out.append(int(self._order[position % self.n]))
        return out


def shard(batch: dict, world_size: int, rank: int, grad_accum: int) -> list[dict]:
    """Split one global batch (dict of tensors, first dim = examples) into this process's micro-batches."""
    n = next(iter(batch.values())).shape[0]
    micro = n // (world_size * grad_accum)
    out = []
    for a in range(grad_accum):
        start = (a * world_size + rank) * micro
        out.append({k: v[start : start + micro] for k, v in batch.items()})
    return out


def linear_schedule(optimizer, warmup_steps: int, max_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (max_steps - step) / max(1, max_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def trainable_state(module: nn.Module) -> dict:
    return {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class Checkpoints:
    """step-NNNNNNN directories beside the output: trainable weights, optimizer, scheduler, RNG per process."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def latest(self) -> Path | None:
        done = sorted(p for p in self.directory.glob("step-*") if (p / "complete").exists())
        return done[-1] if done else None

    def save(self, step, module, optimizer, scheduler, accelerator) -> None:
        final = self.directory / f"step-{step:07d}"
        tmp = self.directory / f".step-{step:07d}.tmp"
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        torch.save(_rng_state(), tmp / f"rng-{accelerator.process_index}.pt")
        if accelerator.is_main_process:
            torch.save({"step": step, "weights": trainable_state(module), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict()}, tmp / "state.pt")
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            (tmp / "complete").write_text(str(step))
            os.replace(tmp, final)
            for old in sorted(self.directory.glob("step-*"))[:-1]:
                shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()

    def load(self, path: Path, module, optimizer, scheduler, accelerator) -> int:
        state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
        params = dict(module.named_parameters())
        with torch.no_grad():
            for name, value in state["weights"].items():
                params[name].copy_(value)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        rng = path / f"rng-{accelerator.process_index}.pt"
        if rng.exists():
            _set_rng_state(torch.load(rng, map_location="cpu", weights_only=True))
        return state["step"]


def _rng_state() -> dict:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def progress_bars_on() -> bool:
    """Live bars only on a terminal (a job's log gets the periodic log lines instead), unless MADX_NO_PROGRESS=1."""
    return os.environ.get("MADX_NO_PROGRESS") != "1" and sys.stderr.isatty()


class Progress:
    """Main-process progress: a bar (on a terminal), and log lines with loss, tokens/s and ETA in train_log.jsonl."""

    def __init__(self, accelerator, total: int, start: int, log_path: Path, log_every: int):
        self.main = accelerator.is_main_process
        self.log_path, self.log_every, self.total = log_path, log_every, total
        self.tokens, self.t0, self.window_t0 = 0, time.perf_counter(), time.perf_counter()
        self.bar = None
        if self.main:
            from tqdm.auto import tqdm

            _truncate_log(log_path, start)
            # a live bar on a terminal; in a log file, the periodic log lines below say the same, once
            self.bar = tqdm(total=total, initial=start, desc="train", dynamic_ncols=True,
                            disable=not progress_bars_on())
        self.start = start

    def advance(self, tokens: int) -> None:
        """One optimizer step done (queued on the device; nothing is read back)."""
        self.tokens += tokens
        if self.main:
            self.bar.update(1)

    def report(self, step: int, loss: float, lr: float, extra: dict | None = None) -> None:
        """Step `step`'s loss, once read back; a log line every log_every steps, at the end, and with `extra`."""
        if not self.main:
            return
        now = time.perf_counter()
        rate = self.tokens / max(now - self.window_t0, 1e-9)
        self.bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{rate:,.0f}", lr=f"{lr:.2e}")
        if (step + 1) % self.log_every == 0 or step + 1 == self.total or extra:
            elapsed = now - self.t0
            eta = elapsed / (step + 1 - self.start) * (self.total - step - 1)
            record = {"step": step + 1, "loss": round(loss, 6), "lr": lr, "tokens_per_s": round(rate, 1),
                      "elapsed_s": round(elapsed, 2), **(extra or {})}
            with open(self.log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
            log.info("step %d/%d loss %.4f lr %.2e %.0f tok/s ETA %s%s", step + 1, self.total, loss, lr, rate,
                     _duration(eta), "".join(f" {k} {v}" for k, v in (extra or {}).items()))
            self.tokens, self.window_t0 = 0, now

    def close(self):
        if self.bar is not None:
            self.bar.close()


class PendingLosses:
    """Per-step summed losses left on the device, read back together (one sync) only when needed: the host
    then runs ahead of the GPU, preparing and queueing the next steps while the current ones compute."""

    MAX = 256  # read back at least this often, whatever log_every is

    def __init__(self, checkpoints: "Checkpoints | None" = None):
        self.checkpoints = checkpoints  # named in the error, as where to resume from
        self.steps: list = []  # (step, summed loss tensor, predicted tokens, lr)

    def add(self, step: int, loss_sum: torch.Tensor, n_predicted: int, lr: float) -> None:
        self.steps.append((step, loss_sum, n_predicted, lr))

    def read(self) -> list[tuple[int, float, float]]:
        """[(step, mean loss, lr)]; stops training at the first non-finite loss, naming its step."""
        if not self.steps:
            return []
        values = torch.stack([loss for _, loss, _, _ in self.steps]).tolist()
        out = []
        for (step, _, n_predicted, lr), value in zip(self.steps, values):
            loss = value / max(n_predicted, 1)
            if not math.isfinite(loss):
                raise TrainingError(
                    f"loss is {loss} at step {step + 1}; stopped without saving. The last good checkpoint is "
                    f"{self.checkpoints and self.checkpoints.latest() or 'none'}; lower lr or check the data, "
                    "then rerun to resume"
                )
            out.append((step, loss, lr))
        self.steps.clear()
        return out


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _truncate_log(path: Path, step: int) -> None:
    """On resume, drop log lines past the checkpoint so the log reads as one run."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    atomic_write_text(path, "".join(line + "\n" for line in keep))


def fit(
    objective: nn.Module,
    global_batch: Callable[[int], tuple[dict, int]],
    settings: TrainSettings,
    work_dir: Path,
    accelerator,
    evaluate: Callable[[int], dict] | None = None,
) -> int:
    """Train `objective` (forward(**micro_batch) -> summed loss) for settings.max_steps optimizer steps.

    global_batch(step) -> (batch of tensors for all processes, number of predicted tokens in it).
    evaluate(step) -> metrics dict, run on every process every settings.eval_every steps and at the end.
    Returns the step trained to. Checkpoints and train_log.jsonl live in work_dir.
    """
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    params = [p for p in objective.parameters() if p.requires_grad]
    if not params:
        raise TrainingError("nothing to train: no parameter requires a gradient")
    optimizer = make_optimizer(params, settings, accelerator.device)
    scheduler = linear_schedule(optimizer, settings.warmup_steps, settings.max_steps)
    checkpoints = Checkpoints(work_dir / "checkpoints")
    start = 0
    latest = checkpoints.latest()
    if latest is not None:
        start = checkpoints.load(latest, objective, optimizer, scheduler, accelerator)
        log.info("resuming from %s (step %d)", latest, start)
    wrapped, optimizer = accelerator.prepare(objective, optimizer)
    if settings.compile:
        # every batch has the same shapes (MLM) or few (task): one graph, compiled on the first step
        log.info("torch.compile (mode %s): the first step compiles the training graph (a minute or so)",
                 settings.compile)
        wrapped = compiled(wrapped, settings.compile)
    world, rank = accelerator.num_processes, accelerator.process_index
    progress = Progress(accelerator, settings.max_steps, start, work_dir / "train_log.jsonl", settings.log_every)
    wrapped.train()
    pending = PendingLosses(checkpoints)
    try:
        for step in range(start, settings.max_steps):
            batch, n_predicted = global_batch(step)
            scale = world / max(n_predicted, 1)  # DDP averages over processes: this makes it a global token mean
            micro_batches = shard(batch, world, rank, settings.grad_accum)
            loss_sum, tokens = optimizer_step(wrapped, micro_batches, scale, accelerator, settings, params, optimizer)
            pending.add(step, accelerator.reduce(loss_sum, reduction="sum"), n_predicted, scheduler.get_last_lr()[0])
            scheduler.step()
            progress.advance(tokens * world)
            last = step + 1 == settings.max_steps
            evaluating = evaluate is not None and (
                last or (settings.eval_every and (step + 1) % settings.eval_every == 0))
            saving = (step + 1) % settings.save_every == 0 and not last
            logging_now = (step + 1) % settings.log_every == 0 or len(pending.steps) >= PendingLosses.MAX
            if not (last or evaluating or saving or logging_now):
                continue
            # read the losses back: never evaluate, checkpoint or finish on a non-finite loss
            losses = pending.read()
            for done, loss, lr in losses[:-1]:
                progress.report(done, loss, lr)
            extra = None
            if evaluating:
                wrapped.eval()
                extra = evaluate(step + 1)
                wrapped.train()
            progress.report(*losses[-1], extra)
            if saving:
                checkpoints.save(step + 1, objective, optimizer, scheduler, accelerator)
    finally:
        progress.close()
    return settings.max_steps


def settings_dict(settings: TrainSettings) -> dict:
    return asdict(settings)
