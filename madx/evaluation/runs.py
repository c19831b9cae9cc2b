"""One evaluation run: a setup's trained task (and the language adapter under it) on a test set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InputError
from ..core.setups import Setup, setup as setup_named


@dataclass(frozen=True)
class Run:
    """One evaluation: a setup's trained task (and the language adapter under it) on the test set."""

    setup: Setup  # or its name
    seed: int | None
    task_dir: Path
    lang_adapter: Path | None
    output: Path  # this run's result JSON
    romanize: str | None = None  # madx_translit: the romanizer the test data is read through

    def __post_init__(self):
        if isinstance(self.setup, str):
            object.__setattr__(self, "setup", setup_named(self.setup))
        name = self.setup.name
        if self.setup.romanizes != bool(self.romanize):
            raise InputError(f"setup {name} (seed {self.seed}): " + (
                "needs the target's romanizer (--romanize)" if self.romanize is None else
                "reads the test data as it is; only madx_translit romanizes it"))
        if (self.setup.lang_adapter is None) != (self.lang_adapter is None):
            need = "needs a language adapter" if self.lang_adapter is None else "takes no language adapter"
            raise InputError(f"setup {name} (seed {self.seed}) {need}")
