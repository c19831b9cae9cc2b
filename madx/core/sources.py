"""Where data comes from: a local file or a `datasets` hub dataset, named by one string.

    path/to/file.txt | .txt.gz | .jsonl | .conll ...     a local file
    hub:unimelb-nlp/wikiann?config=sw&split=test         a hub dataset (config, split, column optional)
    hub:HuggingFaceFW/fineweb-2?config=swh_Latn&streaming=true   read as a stream, never downloaded whole
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from .errors import MadxError

HUB_PREFIX = "hub:"
HUB_KEYS = ("config", "split", "column", "revision", "streaming")
TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes"), ("false", "0", "no")  # a hub spec's streaming=
# the hub's id form: name or namespace/name, of letters, digits, '-', '_' and '.', not starting with '-' or '.'
HUB_ID = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9_.\-]*/)?[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def looks_like_a_path(name: str) -> bool:
    """A local path rather than a hub id: anything that exists here; else absolute, ~, ./ and ../ names, deeper
    ones (a/b/c), names a hub id cannot have ('..', spaces, a trailing /), and namespace/name where the folder
    `namespace` exists here (models/xlmr beside a models/ folder means the local one)."""
    name = str(name)
    if Path(name).exists() or not HUB_ID.match(name) or ".." in name:
        return True
    return "/" in name and Path(name.split("/")[0]).is_dir()


def is_hub_spec(spec) -> bool:
    """A source string that names a hub dataset (hub:ID?options), not a local file."""
    return str(spec).startswith(HUB_PREFIX)


def hub_dataset(spec) -> str:
    """The dataset id (or local dataset directory) of a hub source string, without its options."""
    return str(spec)[len(HUB_PREFIX):].partition("?")[0]


def hub_spec(dataset: str, options: dict) -> str:
    """The source string of a hub dataset and its options (a subset of HUB_KEYS; streaming a bool)."""
    options = {key: (str(value).lower() if isinstance(value, bool) else value) for key, value in options.items()
               if not (key == "streaming" and value is False)}
    return f"{HUB_PREFIX}{dataset}" + (f"?{urlencode(options, safe='{}')}" if options else "")


class DataError(MadxError, ValueError):
    """Bad input data: the message names the file (and line) or key, and what to do."""


@dataclass(frozen=True)
class Source:
    path: Path | None = None
    hub_id: str | None = None
    config: str | None = None
    split: str = "train"
    column: str | None = None
    revision: str | None = None
    streaming: bool = False  # read as it is iterated (datasets' IterableDataset): a corpus too big to download

    @classmethod
    def parse(cls, spec: "str | Path | Source", *, where: str = "data source") -> "Source":
        if isinstance(spec, Source):
            return spec
        spec = str(spec)
        if not is_hub_spec(spec):
            return cls(path=Path(spec))
        hub_id, _, query = spec[len(HUB_PREFIX):].partition("?")
        options = dict(parse_qsl(query, keep_blank_values=False))
        unknown = sorted(set(options) - set(HUB_KEYS))
        if not hub_id or unknown:
            raise DataError(
                f"{where}: {spec!r} is not a hub source; write hub:DATASET_ID?config=NAME&split=SPLIT&column=COL "
                f"(unknown options: {unknown})"
            )
        streaming = options.pop("streaming", "false").lower()
        if streaming not in TRUE_WORDS + FALSE_WORDS:
            raise DataError(f"{where}: {spec!r}: streaming={streaming!r}; write streaming=true or leave it out")
        return cls(hub_id=hub_id, streaming=streaming in TRUE_WORDS, **{"split": "train", **options})

    @property
    def is_hub(self) -> bool:
        return self.hub_id is not None

    def __str__(self) -> str:
        if not self.is_hub:
            return str(self.path)
        options = {key: getattr(self, key) for key in HUB_KEYS if key != "streaming"}
        options["streaming"] = "true" if self.streaming else None  # the default (false) left out
        opts = "&".join(f"{key}={value}" for key, value in options.items() if value is not None)
        return f"{HUB_PREFIX}{self.hub_id}?{opts}"

    def check_exists(self) -> None:
        if not self.is_hub:
            if not self.path.is_file():
                raise DataError(f"{self.path}: file not found")
            if self.path.stat().st_size == 0:
                raise DataError(f"{self.path}: file is empty")

    def fingerprint(self) -> str:
        """Changes when the data may have changed: path, size and mtime; or the hub id and options."""
        if self.is_hub:
            return str(self)
        stat = self.path.stat()
        return f"{self.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"

    def load_hub(self):
        import datasets

        try:
            return datasets.load_dataset(self.hub_id, self.config, split=self.split, revision=self.revision,
                                         streaming=self.streaming)
        except Exception as err:  # noqa: BLE001 - re-raised with what and where
            raise DataError(f"{self}: cannot load from the hub ({type(err).__name__}: {err})") from err
