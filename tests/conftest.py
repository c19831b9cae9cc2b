import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
ADAPTERHUB_PINS = ("torch==2.13.0", "adapters==1.3.0", "transformers==4.57.6")


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
    if not marker.exists() or marker.read_text() != " ".join(ADAPTERHUB_PINS):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *ADAPTERHUB_PINS],
            check=True,
        )
        marker.write_text(" ".join(ADAPTERHUB_PINS))
    return str(python)
