"""madx inspect DIR: what an adapter or AdapterFusion directory holds (and the head saved beside it: a task's labels),
without loading a model; its files verified against the checksums madx recorded when it wrote them (a directory
AdapterHub wrote has none)."""

from __future__ import annotations

import argparse
import json

from .common import run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madx inspect", description=__doc__)
    p.add_argument("adapter_dir", help="an AdapterHub adapter or fusion directory, or a hub id (org/name, "
                   "org/name@revision)")
    p.add_argument("--log-file")
    return p


def _body(args) -> None:
    from ..core.files import CHECKSUMS
    from ..adapters.fusion_io import CONFIG_NAME as FUSION_CONFIG, read_fusion_config, read_fusion_weights
    from ..adapters.heads import HEAD_CONFIG, head_type_of, read_head_weights
    from ..adapters.hub import resolve_adapter
    from ..adapters.io import read_adapter_config, read_adapter_weights
    from ..tasks.families import read_head_config

    directory, commit = resolve_adapter(args.adapter_dir)
    if (directory / FUSION_CONFIG).is_file():  # a fusion directory (AdapterHub's save_adapter_fusion, madx_fusion)
        meta, config = read_fusion_config(directory)
        file, tensors = read_fusion_weights(directory)
        kind = {"fusion": meta.get("name") or ",".join(meta["adapter_names"]), "adapter_names": meta["adapter_names"]}
    else:
        meta, config = read_adapter_config(directory)
        file, tensors = read_adapter_weights(directory)
        kind = {"name": meta.get("name")}
    summary = {
        **kind,
        "model_type": meta.get("model_type"),
        "hidden_size": meta.get("hidden_size"),
        "config": config.__dict__,
        "weights": str(file),
        "parameters": sum(t.numel() for t in tensors.values()),
        "checksums": "verified" if (directory / CHECKSUMS).is_file() else f"none recorded (no {CHECKSUMS})",
    }
    if commit is not None:
        summary["hub"] = {"id": args.adapter_dir, "commit": commit, "snapshot": str(directory)}
    if (directory / HEAD_CONFIG).is_file():  # a task adapter saved with its head (madx train-task, with_head=True)
        head = read_head_config(directory)
        head_file, head_tensors = read_head_weights(directory)
        summary["head"] = {"task_type": head["task_type"], "head_type": head_type_of(head),
                           "labels": head["label_names"], "weights": str(head_file),
                           "parameters": sum(t.numel() for t in head_tensors.values())}
    print(json.dumps(summary, indent=2, default=list))


def main(argv=None) -> int:
    return run(parser(), _body, argv)
