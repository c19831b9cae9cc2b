"""Writing outputs atomically: a file or a directory appears complete, or not at all; and the checksums of the
weights madx writes.

Every output madx writes goes through here, so a killed job never leaves a half-written file that a
rerun (or Snakemake) would take as finished.

Checksums: a directory madx writes weights into carries CHECKSUMS (`{relative path: sha256}`) beside them, written
in the same staged directory, so it appears with them. A loader verifies a file against it before using it: bytes
changed since madx wrote them are an error naming the file, never a silent load. A directory without CHECKSUMS (an
adapter AdapterHub saved, one downloaded from the hub) loads unchecked, as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .errors import MadxError

CHECKSUMS = "madx_checksums.json"
# how an output was trained (base model, data, settings), beside its weights: a language adapter's, a task output's
LANG_RECORD = "training.json"
TASK_RECORD = "task.json"


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


# ---- checksums


class ChecksumError(MadxError, ValueError):
    """A file whose bytes are not those madx recorded when it wrote it."""


def sha256_of(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read once while its size, modification time and inode stay the same (within a
    process, and across processes inside `remembered_digests`)."""
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(key[0], "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def _unchanged(key: tuple[str, int, int, int]) -> bool:
    """The file of a digest's key is still there, with that size, modification time and inode."""
    try:
        stat = os.stat(key[0])
    except OSError:
        return False
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino) == key[1:]


@contextlib.contextmanager
def remembered_digests(record: str | os.PathLike) -> Iterator[None]:
    """sha256_of inside the block takes the digests of files unchanged since `record` (a JSON list of [path, size,
    mtime_ns, inode, sha256]) was written, and `record` then holds every digest known: the workflow's check of every
    finished output reads only what changed since the last run (a full fine-tuned model is GBs). A record that
    cannot be read is ignored."""
    record = Path(record)
    read = []
    with contextlib.suppress(OSError, ValueError, TypeError):
        read = [[str(path), int(size), int(mtime_ns), int(inode), str(digest)]
                for path, size, mtime_ns, inode, digest in json.loads(record.read_text(encoding="utf-8"))]
    for *key, digest in read:
        _DIGESTS.setdefault(tuple(key), digest)
    yield
    known = [[*key, digest] for key, digest in sorted(_DIGESTS.items()) if _unchanged(key)]
    if known != read and record.parent.is_dir():  # written only when it changed: a run's outputs stay untouched
        with contextlib.suppress(OSError):
            write_text(record, json.dumps(known) + "\n")


def files_under(directory: Path) -> list[Path]:
    return sorted(p for p in Path(directory).rglob("*") if p.is_file())


def record_checksums(directory: str | os.PathLike, files: Iterable[str | os.PathLike], *,
                     replace: bool = False) -> Path:
    """Add the sha256 of `files` (inside `directory`) to its CHECKSUMS, written atomically; `replace`: the record
    then lists only `files` (one rename switches from the old record to the new: checkpoints.BestWeights)."""
    directory = Path(directory)
    sidecar = directory / CHECKSUMS
    recorded = _read_checksums(sidecar) if sidecar.is_file() and not replace else {}
    for file in files:
        recorded[Path(file).relative_to(directory).as_posix()] = sha256_of(file)
    return write_text(sidecar, json.dumps(dict(sorted(recorded.items())), indent=2) + "\n")


def verify_checksums(directory: str | os.PathLike, files: Iterable[str | os.PathLike] | None = None, *,
                     under: str | None = None, error: type[Exception] = ChecksumError,
                     remedy: str | None = None) -> bool:
    """Check `files` (inside `directory`; None: every file its CHECKSUMS lists, or those under the sub-directory
    `under`) against the sha256 madx recorded when it wrote them. A file CHECKSUMS does not list is not checked; a
    listed file that differs or is gone raises `error`, naming the file and what to do (`remedy`, else: delete the
    directory and rerun what wrote it). Returns whether the directory has CHECKSUMS at all."""
    directory = Path(directory)
    sidecar = directory / CHECKSUMS
    if not sidecar.is_file():
        return False  # not written by madx (AdapterHub's own, a published adapter): loads as before
    remedy = remedy or (f"retrain or download it again: delete {directory} and rerun snakemake (or the madx command "
                        "that wrote it)")
    recorded = _read_checksums(sidecar, error, remedy)
    if files is None:
        names = [n for n in recorded if under is None or n.startswith(under.rstrip("/") + "/")]
    else:
        names = [Path(f).relative_to(directory).as_posix() for f in files]
    for name in names:
        if name not in recorded:
            continue
        file = directory / name
        if not file.is_file():
            raise error(f"{file}: missing; {sidecar.name} lists it as written with the rest of {directory}; {remedy}")
        if sha256_of(file) != recorded[name]:
            raise error(f"{file}: its bytes differ from the sha256 madx recorded when it wrote it ({sidecar}): the "
                        f"file is corrupt or was changed since; {remedy}. If another tool rewrote it on purpose, "
                        f"delete {sidecar} to load it unchecked")
    return True


def read_checksums(directory: str | os.PathLike, error: type[Exception] = ChecksumError,
                   remedy: str | None = None) -> dict | None:
    """{relative path: sha256} of `directory`'s CHECKSUMS, or None when it has none."""
    sidecar = Path(directory) / CHECKSUMS
    return _read_checksums(sidecar, error, remedy) if sidecar.is_file() else None


def _read_checksums(sidecar: Path, error: type[Exception] = ChecksumError, remedy: str | None = None) -> dict:
    remedy = remedy or f"delete {sidecar.parent} and rerun snakemake (or the madx command that wrote it)"
    try:
        recorded = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise error(f"{sidecar}: not valid JSON ({err}); it is corrupt: {remedy}") from None
    if not isinstance(recorded, dict) or not all(isinstance(v, str) for v in recorded.values()):
        raise error(f"{sidecar}: expected {{file name: sha256}}; {remedy}")
    return recorded


# ---- reading torch files safely


def load_torch_file(file: str | os.PathLike, error: type[Exception] = ValueError):
    """torch.load(weights_only=True) of a file: a pickle that would run code is refused with a message that names
    the file and says why (never torch's advice to turn the check off); an unreadable file is `error` too."""
    import pickle

    import torch

    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        called = re.search(r"GLOBAL ([\w.]+)", str(err))
        what = f"it asks to call {called.group(1)} when loaded" if called else "its pickle holds more than tensors"
        raise error(f"{file}: not a plain tensor file ({what}); madx refuses it for safety, since unpickling it "
                    "could run code. Convert it to safetensors with a tool you trust, on a machine where running it "
                    "is safe, or get the weights as a .safetensors file") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise error(f"{file}: cannot be read ({err}); the file is truncated or corrupt, copy it again") from None
