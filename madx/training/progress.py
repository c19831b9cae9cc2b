"""Training progress on the main process: a bar on a terminal, log lines (loss, tokens/s, ETA) and
train_log.jsonl; and the per-step losses, kept on the device until a log line reads them back."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..core.console import progress_bars_on
from ..core.files import write_text
from .accelerator import TrainingError

if TYPE_CHECKING:
    from .checkpoints import Checkpoints

log = logging.getLogger(__name__)


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
    write_text(path, "".join(line + "\n" for line in keep))
