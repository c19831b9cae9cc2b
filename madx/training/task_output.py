"""What a task training writes, and reading it back: its output directory (task adapter and head, full_ft's whole
model, or a fusion with copies of the adapters it fuses), its record (task.json), staged then renamed into place."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from torch import nn

from ..adapters.composition import Fuse
from ..adapters.fusion_io import read_fusion_config, write_fusion_files
from ..adapters.io import write_adapter_files
from ..adapters.kadapter import save_knowledge_reader
from ..adapters.model import madx_state
from ..core.errors import InputError
from ..core.files import TASK_RECORD, files_under, record_checksums, staged_dir, verify_checksums, write_text
from ..core.setups import training
from ..data import hub
from ..tasks.families import save_head
from .cards import CARD, task_card

FULL_MODEL_DIR = "model"
FUSED_DIR = "adapters"  # in a madx_fusion output: a copy of each fused task adapter, under its name


def write_task_output(model: nn.Module, task: str, setup: str, base_model: str, label_names: list[str],
                      task_type: str, work_dir: Path, output: Path, record: dict, num_choices: int | None = None
                      ) -> None:
    """Task adapter (or, for full_ft, the whole model), head, train log and task.json, staged then renamed into
    place, so `output` is either the old result or the whole new one; the weights' and configs' sha256 with them."""
    with staged_dir(output) as staging:
        if training(setup).full_model:
            model.save_pretrained(staging / FULL_MODEL_DIR)
            record_checksums(staging, files_under(staging / FULL_MODEL_DIR))
        elif training(setup).fusion:  # the fusion, and the adapters it fuses beside it: the output stands alone
            [fusion] = madx_state(model).fusions  # build_task_model added this one
            names = Fuse.of(fusion).names
            write_fusion_files(model, names, staging, model_name=base_model)
            for name in names:
                (staging / FUSED_DIR / name).mkdir(parents=True)
                write_adapter_files(model, name, staging / FUSED_DIR / name, model_name=base_model)
        else:
            write_adapter_files(model, task, staging, model_name=base_model)
        save_head(model, staging, task, label_names, task_type, model_name=base_model, num_choices=num_choices)
        if record.get("knowledge"):  # the head's first layer, reading the K-adapters beside the encoder
            save_knowledge_reader(model, staging, record["knowledge"])
        shutil.copy(work_dir / "train_log.jsonl", staging / "train_log.jsonl")
        write_text(staging / TASK_RECORD, json.dumps(record, indent=2) + "\n")
        write_text(staging / CARD, task_card({**record, "task": task, "setup": setup, "base_model": base_model,
                                              "task_type": task_type, "label_names": label_names}, task))


def fused_adapter_dirs(task_dir: Path) -> list[Path]:
    """A madx_fusion output's copies of the adapters its fusion combines, in the fusion's order."""
    meta, _ = read_fusion_config(task_dir)
    dirs = [Path(task_dir) / FUSED_DIR / name for name in meta["adapter_names"]]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        raise InputError(f"{task_dir}: a fusion output without its fused adapters {missing}; retrain it (delete "
                         f"{task_dir} and rerun snakemake)")
    return dirs


def load_full_model(task_dir: Path, auto_class: str) -> nn.Module:
    """full_ft's fine-tuned model from its task directory, its files verified against the checksums madx recorded."""
    verify_checksums(task_dir, under=FULL_MODEL_DIR)
    return hub.load_finetuned(Path(task_dir) / FULL_MODEL_DIR, auto_class)
