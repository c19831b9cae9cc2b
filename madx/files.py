"""Writing outputs atomically: a file or a directory appears complete, or not at all.

Every output madx writes goes through here, so a killed job never leaves a half-written file that a
rerun (or Snakemake) would take as finished.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator


def write_with(path: str | os.PathLike, save: Callable[[Path], None]) -> Path:
    """save(tmp) writes the file at a temporary path beside `path`, which is then renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        save(Path(tmp))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def replace_dir(tmp: Path, directory: Path) -> None:
    """Move a finished directory into place, replacing an old one only once the new one is complete."""
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, directory)


def staging_dir(output: str | os.PathLike) -> Path:
    """Where `output` is built, emptied of any crashed attempt; `replace_dir` then moves it into place."""
    output = Path(output)
    staging = output.with_name(f".{output.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    return staging


@contextlib.contextmanager
def staged_dir(output: str | os.PathLike) -> Iterator[Path]:
    """Build a directory in `.NAME.staging` beside `output` (emptied of any crashed attempt), then move it into
    place when the block finishes; an exception leaves `output` as it was and removes the staging directory."""
    staging = staging_dir(output)
    staging.mkdir(parents=True)
    try:
        yield staging
        replace_dir(staging, Path(output))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
