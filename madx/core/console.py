"""What a command's output goes to: live progress bars on a terminal, periodic log lines in a job's log."""

from __future__ import annotations

import os
import sys


def progress_bars_on() -> bool:
    """Live bars only on a terminal (a job's log gets the periodic log lines instead), unless MADX_NO_PROGRESS=1."""
    return os.environ.get("MADX_NO_PROGRESS") != "1" and sys.stderr.isatty()
