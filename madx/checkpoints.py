"""Training checkpoints: step-NNNNNNN directories beside the output, written whole or not at all, with the sha256
of their files (files.CHECKSUMS) verified on resume."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from torch import nn

from .accelerator import TrainingError
from .files import load_torch_file, record_checksums, verify_checksums


def trainable_state(module: nn.Module) -> dict:
    return {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}


class Checkpoints:
    """Trainable weights, optimizer, scheduler, and the RNG state of every process."""

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
            record_checksums(tmp, sorted(tmp.glob("*.pt")))
            (tmp / "complete").write_text(str(step))
            os.replace(tmp, final)
            for old in sorted(self.directory.glob("step-*"))[:-1]:
                shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()

    def load(self, path: Path, module, optimizer, scheduler, accelerator) -> int:
        rng = path / f"rng-{accelerator.process_index}.pt"
        verify_checksums(path, [path / "state.pt", *([rng] if rng.exists() else [])], error=TrainingError,
                         remedy=f"delete {path} and rerun: training starts again from the beginning")
        state = load_torch_file(path / "state.pt", error=TrainingError)
        params = dict(module.named_parameters())
        with torch.no_grad():
            for name, value in state["weights"].items():
                params[name].copy_(value)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if rng.exists():
            _set_rng_state(load_torch_file(rng, error=TrainingError))
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
