"""madx inspect ADAPTER_DIR: what an adapter directory holds, without loading a model; its files verified against
the checksums madx recorded when it wrote them (a directory AdapterHub wrote has none)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madx inspect", description=__doc__)
    p.add_argument("adapter_dir", type=Path, help="an AdapterHub adapter directory")
    p.add_argument("--log-file")
    return p


def _body(args) -> None:
    from ..core.files import CHECKSUMS
    from ..adapters.io import read_adapter_config, read_adapter_weights

    meta, config = read_adapter_config(args.adapter_dir)
    file, tensors = read_adapter_weights(args.adapter_dir)
    summary = {
        "name": meta.get("name"),
        "model_type": meta.get("model_type"),
        "hidden_size": meta.get("hidden_size"),
        "config": config.__dict__,
        "weights": str(file),
        "parameters": sum(t.numel() for t in tensors.values()),
        "checksums": "verified" if (args.adapter_dir / CHECKSUMS).is_file() else f"none recorded (no {CHECKSUMS})",
    }
    print(json.dumps(summary, indent=2, default=list))


def main(argv=None) -> int:
    return run(parser(), _body, argv)
