import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
ADAPTERHUB_PINS = ("torch==2.13.0", "adapters==1.3.0", "transformers==4.57.6")

# The suite's two workers (xdist) share the machine's cores: torch on two threads beside a busy core spins against
# it (a training test took 2.7x the CPU time, 127 s against 58 s, on 2 threads beside one busy loop), so each
# worker, and every process it starts, runs torch on one thread. (Snakemake's jobs get their rule's threads.)
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    torch.set_num_threads(1)


# The longest test files, first: the workers (xdist, a file at a time) take files in this order, so the minutes-long
# end-to-end runs start at once and the short files fill the other worker beside them (last, as collected in
# name order, the suite's end waited on them alone: 12 min 12 s, about 8 of them with both cores busy)
FIRST = ("test_slurm.py", "test_workflow_run.py", "test_workflow_families.py", "test_workflow.py", "test_training.py",
         "test_interop_heads.py")


def pytest_collection_modifyitems(items):
    """Every test on AdapterHub's venv is slow (it builds one with the real `adapters`): `-m "not slow"` skips them.
    The longest files go first (FIRST)."""
    for item in items:
        if "adapterhub_python" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
    missing = [name for name in FIRST if not (REPO / "tests" / name).exists()]
    assert not missing, f"conftest.FIRST names test files that are not there: {missing}"
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))  # stable: a file's tests keep their order


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def adapterhub_python() -> str:
    """A Python with AdapterHub's `adapters` (which pins transformers 4.57) in its own venv.

    Set MADX_ADAPTERHUB_PYTHON to reuse one; otherwise it is built once under .cache/.
    """
    if os.environ.get("MADX_ADAPTERHUB_PYTHON"):
        return os.environ["MADX_ADAPTERHUB_PYTHON"]
    venv = REPO / ".cache" / "adapterhub-venv"
    python = venv / "bin" / "python"
    marker = venv / ".madx-ready"
    venv.parent.mkdir(exist_ok=True)
    with open(venv.parent / "adapterhub-venv.lock", "w") as lock:  # the suite's workers (xdist) build it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists() or marker.read_text() != " ".join(ADAPTERHUB_PINS):
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            # --no-compile: the venv's first imports compile what they use; compiling all of torch, transformers
            # and adapters at install was 29 of the build's 46 s
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check",
                 *ADAPTERHUB_PINS],
                check=True,
            )
            marker.write_text(" ".join(ADAPTERHUB_PINS))
    return str(python)


def demo_languages():
    """The shipped demo's languages (configs/config.yaml)."""
    import yaml
    from madx.demo.data import DemoLanguage

    config = yaml.safe_load((REPO / "configs" / "config.yaml").read_text())
    return [DemoLanguage(code, **entry) for code, entry in config["demo"]["languages"].items()]


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """A tiny demo benchmark and base model, built by madx itself (half a minute): (data dir, base model dir)."""
    os.environ.setdefault("MADX_NO_PROGRESS", "1")
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _build_tiny_base(tmp_path_factory.mktemp("tiny"))
    # the suite's workers share one (the directory above each worker's own): the first builds it, the others wait
    shared = tmp_path_factory.getbasetemp().parent
    with open(shared / "tiny.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        root, done = shared / "tiny", shared / "tiny.done"
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)
            _build_tiny_base(root)
            done.touch()
    return root, root / "base"


def _build_tiny_base(root: Path) -> tuple[Path, Path]:
    from madx.demo import base_model as base, data as demo
    from madx.core.settings import TrainSettings

    languages = demo_languages()
    demo.generate(root, languages, demo.DemoData(corpus_sentences=1500, train_sentences=400, dev_sentences=100,
                                                 test_sentences=100))
    corpora = [root / "corpora" / f"{lang.code}.txt" for lang in languages]
    base.build_base_model(
        [c for c, lang in zip(corpora, languages) if lang.seen], corpora, root / "base",
        shape=base.TinyEncoder(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
                               max_seq_len=48),
        settings=TrainSettings(max_steps=600, batch_size=32, lr=2e-3, warmup_steps=30, log_every=100),
    )
    return root, root / "base"
