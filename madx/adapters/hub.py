"""Adapters by Hugging Face Hub id: wherever madx takes an adapter directory it also takes `org/name` (AdapterHub's
published adapters, e.g. `AdapterHub/xlm-roberta-base-sw-wiki_pfeiffer`), pinned to a `revision` when given.

An id resolves through huggingface_hub to a snapshot in its standard cache (HF_HOME / HF_HUB_CACHE), downloading
only an adapter's files (its config, weights, head, checksums and card): a branch or tag is asked of the hub each
time (a new commit is fetched), a commit is read from the cache once it is there; HF_HUB_OFFLINE=1 reads the cache
alone and HF_TOKEN is honoured, as the hub client does. The snapshot's directory name is the commit it resolved to, so a
result that names the directory names the commit. A local directory is taken as it is.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..core.errors import MadxError
from ..core.sources import looks_like_a_path

# AdapterHub's file names: what every adapter directory has, and its weights (safetensors, or the legacy pickle)
CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter.safetensors"
LEGACY_WEIGHTS_NAME = "pytorch_adapter.bin"
# the files of an adapter directory as madx and AdapterHub write them (no other file of a repository is fetched):
# configs, weights, checksums, the model card, a madx_emb adapter's embeddings/, a fusion's fused adapters/
ADAPTER_PATTERNS = ["*.json", "*.safetensors", "*.bin", "*.md", "embeddings/**", "adapters/**"]


COMMIT = re.compile(r"^[0-9a-f]{40}$")


def _complete(directory: Path) -> bool:
    """A snapshot with an adapter's weights beside its config (not one whose download was cut short)."""
    return any((directory / name).is_file() for name in (WEIGHTS_NAME, LEGACY_WEIGHTS_NAME))


class AdapterHubError(MadxError, ValueError):
    """An adapter id that cannot be resolved: not cached offline, not on the hub, or the hub out of reach."""


class HubUnreachable(AdapterHubError):
    """An adapter id that is not cached, with the hub out of reach (no network, a proxy, an outage), HF_HUB_OFFLINE
    unset: a job elsewhere may still fetch it."""


def split_spec(spec: str | os.PathLike) -> tuple[str, str | None]:
    """An adapter as one string: a local directory, `org/name`, or `org/name@revision` (the config's
    `{id: org/name, revision: ...}`): (directory or id, revision or None)."""
    spec = str(spec)
    if "@" in spec and not Path(spec).exists():
        name, revision = spec.rsplit("@", 1)
        if not looks_like_a_path(name) and revision:
            return name, revision
    return spec, None


def is_adapter_id(spec: str | os.PathLike) -> bool:
    """A hub id (`org/name`, or `org/name@revision`) rather than a local directory (core.sources.looks_like_a_path)."""
    return not looks_like_a_path(split_spec(spec)[0])


def resolve_adapter(spec: str | os.PathLike) -> tuple[Path, str | None]:
    """(the directory to load, the commit it resolved to): a local directory as it is (None), or a hub id's
    snapshot in the hub cache, downloaded unless HF_HUB_OFFLINE is set."""
    spec, revision = split_spec(spec)
    if looks_like_a_path(spec):
        return Path(spec), None
    from huggingface_hub import constants, snapshot_download, try_to_load_from_cache
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    if constants.HF_HUB_OFFLINE or (revision and COMMIT.match(revision)):
        # a commit never changes, and offline the cache is all there is: no question to the hub
        cached = try_to_load_from_cache(spec, CONFIG_NAME, revision=revision)
        if isinstance(cached, str) and _complete(Path(cached).parent):
            directory = Path(cached).parent
            return directory, directory.name
    at = f" at revision {revision}" if revision else ""
    try:
        directory = Path(snapshot_download(str(spec), revision=revision, allow_patterns=ADAPTER_PATTERNS))
    except RevisionNotFoundError:
        raise AdapterHubError(f"adapter {spec}: the hub has no revision {revision!r}; give a branch, tag or commit "
                              "of it") from None
    except RepositoryNotFoundError:
        raise AdapterHubError(f"adapter {spec}: no such repository on the hub (or it is private: log in with hf auth "
                              "login or set HF_TOKEN); fix the id, or give a local adapter directory") from None
    except LocalEntryNotFoundError:
        raise (AdapterHubError if constants.HF_HUB_OFFLINE else HubUnreachable)(f"adapter {spec}{at}: not in the hub cache, and the hub cannot be reached (HF_HUB_OFFLINE "
                              f"set, or no network); download it where there is network (hf download {spec}"
                              f"{f' --revision {revision}' if revision else ''}), or give a local directory") from None
    except OSError as err:  # a proxy, an outage: the client's own words
        raise HubUnreachable(f"adapter {spec}{at}: cannot be fetched from the hub ({err})") from None
    return directory, directory.name
