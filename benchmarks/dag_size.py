"""How large the workflow's DAG gets, and how long Snakemake takes to build it (`snakemake -n`).

    python benchmarks/dag_size.py            # prints job counts and dry-run wall times

Configs (hub sources only, so nothing needs to exist and nothing is downloaded):
- wide: 100 languages x 3 NER-type tasks x 5 seeds x 4 setups, English source (issue #14's case);
- paper: the MAD-X paper's NER protocol, 16 languages x 5 seeds x 4 setups, English source;
- all pairs: the same 16 languages, each a source and a target (Table 2 of the paper: 16 x 16 pairs).
Evaluation is one job per (task, source, target), every setup and seed in it.
A figure, not a test: the target on a 2-core machine is a dry run of at most 5 s each.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def config(n_languages: int, n_tasks: int, n_seeds: int, all_sources: bool = False) -> dict:
    languages = {"en": {"corpus": {"hub": "wikimedia/wikipedia", "config": "20231101.en", "split": "train"}}}
    for i in range(n_languages - 1):
        code = f"l{i:03d}"
        languages[code] = {"corpus": {"hub": "wikimedia/wikipedia", "config": f"20231101.{code}", "split": "train"}}
    tasks = {f"ner{t}": {"type": "ner", "train": {"hub": "unimelb-nlp/wikiann", "config": "{lang}", "split": "train"},
                         "dev": {"hub": "unimelb-nlp/wikiann", "config": "{lang}", "split": "validation"},
                         "test": {"hub": "unimelb-nlp/wikiann", "config": "{lang}", "split": "test"}}
             for t in range(n_tasks)}
    sources = {"source_languages": "all"} if all_sources else {"source_language": "en"}
    return {"base_model": "FacebookAI/xlm-roberta-base", **sources, "languages": languages, "tasks": tasks, "seeds": list(range(1, n_seeds + 1)), "setups": ["madx", "source_la", "task_only", "full_ft"]}


def dry_run(checkout: Path, name: str, cfg: dict) -> tuple[int, int, float]:
    path = checkout / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    start = time.perf_counter()
    proc = subprocess.run([SNAKEMAKE, "-n", "--configfile", path.name], cwd=checkout, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{name}: snakemake -n failed:\n{proc.stderr[-3000:]}")
    out = proc.stdout + proc.stderr
    total, evaluate = (re.search(rf"^{row}\s+(\d+)", out, re.M) for row in ("total", "evaluate"))
    return int(total.group(1)) if total else -1, int(evaluate.group(1)) if evaluate else -1, seconds


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        checkout = Path(tmp)
        for item in ("Snakefile", "workflows", "configs"):
            source = REPO / item
            (shutil.copytree if source.is_dir() else shutil.copy)(source, checkout / item)
        print(f"{'config':<44} {'jobs':>7} {'evaluate':>9} {'dry run':>9}")
        for name, cfg in (("wide: 100 langs x 3 tasks x 5 seeds", config(100, 3, 5)),
                          ("paper: 16 langs x 1 task x 5 seeds", config(16, 1, 5)),
                          ("all pairs: 16 sources x 16 targets x 5 seeds", config(16, 1, 5, all_sources=True))):
            jobs, evaluate, seconds = dry_run(checkout, name.split(":")[0].replace(" ", "_"), cfg)
            print(f"{name:<44} {jobs:>7} {evaluate:>9} {seconds:>8.1f}s")


if __name__ == "__main__":
    main()
