"""A Hugging Face hub cache laid out as huggingface_hub lays it out, for tests that resolve hub ids offline:
<cache>/models--ORG--NAME/ with blobs/<sha256> (the files' bytes), snapshots/<commit>/<file> (links to the blobs)
and refs/<branch or tag> (the commit it points at)."""

import hashlib
import os
from pathlib import Path


def publish(cache: Path, repo_id: str, directory: Path, commit: str, refs=("main",)) -> Path:
    """Put the files of `directory` into the cache as commit `commit` of `repo_id`; returns the snapshot folder."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    for file in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / file.relative_to(directory)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)
    return snapshot


def offline_cache(monkeypatch, cache: Path) -> None:
    """huggingface_hub reads this cache alone, as with HF_HUB_CACHE=cache HF_HUB_OFFLINE=1."""
    from huggingface_hub import constants

    cache.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
