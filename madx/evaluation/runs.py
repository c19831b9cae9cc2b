"""One evaluation run: a setup's trained task (and the language adapter under it) on a test set."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..adapters.hub import is_adapter_id, resolve_adapter
from ..core.errors import InputError
from ..core.settings import EmeaSettings
from ..core.setups import Setup, setup as setup_named


@dataclass(frozen=True)
class Run:
    """One evaluation: a setup's trained task (and the language adapter under it) on the test set."""

    setup: Setup  # or its name
    seed: int | None
    task_dir: Path  # a directory, or a ready task adapter's hub id (a string, until resolved())
    # the language adapters under the task adapter: none, one, or madx_avg's several (given as None, one or a list):
    # directories (Paths) and hub ids (strings, until resolved())
    lang_adapters: tuple[Path | str, ...]
    output: Path  # this run's result JSON
    romanize: str | None = None  # madx_translit: the romanizer the test data is read through
    emea: EmeaSettings | None = None  # madx_emea: its test-time steps (None: the defaults; other setups: none)

    def __post_init__(self):
        if isinstance(self.setup, str):
            object.__setattr__(self, "setup", setup_named(self.setup))
        given = self.lang_adapters
        given = () if given is None else (given,) if isinstance(given, (str, Path)) else tuple(given)
        # a hub id stays the string it was given (resolved() resolves it); a directory becomes a Path
        object.__setattr__(self, "lang_adapters", tuple(map(_dir_or_id, given)))
        object.__setattr__(self, "task_dir", _dir_or_id(self.task_dir))
        object.__setattr__(self, "emea", (self.emea or EmeaSettings()) if self.setup.test_time_weights else None)
        name = self.setup.name
        if self.setup.romanizes != bool(self.romanize):
            raise InputError(f"setup {name} (seed {self.seed}): " + (
                "needs the target's romanizer (--romanize)" if self.romanize is None else
                "reads the test data as it is; only madx_translit romanizes it"))
        n = len(self.lang_adapters)
        if (self.setup.lang_adapter is None) != (n == 0):
            need = "needs a language adapter" if n == 0 else "takes no language adapter"
            raise InputError(f"setup {name} (seed {self.seed}) {need}")
        if n > 1 and not self.setup.averages:
            raise InputError(f"setup {name} (seed {self.seed}) stacks one language adapter, {n} given; madx_avg "
                             "averages several")

    @property
    def lang_adapter(self) -> Path | None:
        """The one language adapter of a run that stacks one (None: none, or several averaged)."""
        return self.lang_adapters[0] if len(self.lang_adapters) == 1 else None

    def resolved(self) -> tuple[Run, list[dict]]:
        """This run with its hub ids resolved to their snapshots in the hub cache (downloaded unless HF_HUB_OFFLINE),
        and what each resolved to: [{"id", "commit", "snapshot"}] (empty for local directories only)."""
        found, paths = [], []
        for spec in (self.task_dir, *self.lang_adapters):
            if isinstance(spec, str):
                directory, commit = resolve_adapter(spec)
                found.append({"id": str(spec), "commit": commit, "snapshot": str(directory)})
                spec = directory
            paths.append(spec)
        return (replace(self, task_dir=paths[0], lang_adapters=tuple(paths[1:])) if found else self), found


def _dir_or_id(spec: Path | str) -> Path | str:
    """An adapter as given: a hub id stays its string (Run.resolved() resolves it), a directory becomes a Path."""
    return spec if isinstance(spec, str) and is_adapter_id(spec) else Path(spec)
