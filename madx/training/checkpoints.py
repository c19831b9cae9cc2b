"""Training checkpoints: step-NNNNNNN directories beside the output, written whole or not at all, with the sha256
of their files (files.CHECKSUMS) verified on resume; and the best-on-dev weights of task training, kept alike."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import torch
from torch import nn

from ..core.files import CHECKSUMS, load_torch_file, read_checksums, record_checksums, verify_checksums, write_with
from ..core.settings import TrainingError


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


class BestWeights:
    """{"score", "step", "weights"} of the best dev score so far, in `directory` (inside the work dir, so a resumed
    run still knows its best), verified against their sha256 when read.

    The record (files.CHECKSUMS) is the commit point: a new best is written as its own best-NNNNNN.pt, then one
    atomic rename puts in place a record that lists only that file, then the older files go. A kill at any moment
    leaves a record naming a whole file with its sha256 (the previous best before the rename, the new one after),
    never a file and a record that disagree, so a resume is never blocked. A file the record does not list is a
    leftover of such a kill and is never read. No record at all is no best yet: the kill came before the first was
    committed, during the dev evaluation that found it, which runs before that step's checkpoint; so the resumed
    run, from an earlier checkpoint, scores that step again and finds the same best."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.remedy = (f"delete {self.directory.parent} and rerun: training starts again from the beginning (its "
                       "checkpoints without the best weights so far would give another result)")

    def exists(self) -> bool:
        return self._recorded() is not None

    def save(self, best: dict) -> None:
        current = self._recorded()  # numbered past it: the file the record vouches for is never overwritten
        file = self.directory / f"best-{int(current.stem[len('best-'):]) + 1 if current else 1:06d}.pt"
        write_with(file, lambda tmp: torch.save(best, tmp))
        record_checksums(self.directory, [file], replace=True)
        for old in self.directory.glob("best-*.pt"):
            if old != file:
                old.unlink()

    def load(self) -> dict:
        file = self._recorded()
        if file is None:
            raise TrainingError(f"{self.directory}: no best-on-dev weights recorded; {self.remedy}")
        verify_checksums(self.directory, error=TrainingError, remedy=self.remedy)
        return load_torch_file(file, error=TrainingError)

    def _recorded(self) -> Path | None:
        """The file the record lists, or None before the first best."""
        recorded = read_checksums(self.directory, TrainingError, self.remedy)
        if recorded is None:
            return None
        if len(recorded) != 1 or not re.fullmatch(r"best-\d{6}\.pt", next(iter(recorded))):
            raise TrainingError(f"{self.directory / CHECKSUMS}: expected the record of one best-NNNNNN.pt, found "
                                f"{sorted(recorded)}; {self.remedy}")
        return self.directory / next(iter(recorded))


def _rng_state() -> dict:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
