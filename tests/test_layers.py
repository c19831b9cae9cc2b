"""madx's packages form layers, and a module imports only from its own package or from layers below: the adapter
maths and the data readers never depend on training, training never on the experiment, and the commands sit on
top of everything."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "madx"
LAYERS = [
    ("core: settings, atomic files and checksums, locks, data sources, setups, tensor facts, lazy exports", {"core"}),
    ("adapters: their modules, in a model, on disk (AdapterHub's formats)", {"adapters"}),
    ("data: corpora, labelled records, base models and tokenizers, romanization, coverage", {"data"}),
    ("task families, their metrics and baselines", {"tasks"}),
    ("training: the loop, MLM, language-adapter and task training", {"training"}),
    ("on top of training: evaluation, the demo, benchmarks, the report", {"evaluation", "demo", "bench", "report"}),
    ("the experiment: config schema and checks, paths, the plan of jobs", {"experiment"}),
    ("the package and its commands", {"__init__", "cli", "commands"}),
]
RANK = {name: rank for rank, (_, names) in enumerate(LAYERS) for name in names}


def unit_of(path: Path) -> str:
    """The layer unit a file belongs to: its package under madx/, or the top-level module's name."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def imported_units(path: Path) -> set[str]:
    """The layer units `path` imports, at the top of the file or inside a function."""
    own = path.relative_to(PACKAGE).with_suffix("").parts  # ("training", "task")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            anchor = own[: len(own) - node.level]  # the package the dots lead to
            target = [*anchor, *(node.module.split(".") if node.module else [])]
            if target:
                found.add(target[0])
            else:  # `from .. import x`: x is a unit, or a name of madx/__init__ (__version__)
                found |= {alias.name for alias in node.names if alias.name in RANK} or {"__init__"}
        elif isinstance(node, ast.ImportFrom) and node.module == "madx":  # `from madx import training`
            found |= {alias.name for alias in node.names if alias.name in RANK} or {"__init__"}
        elif isinstance(node, ast.ImportFrom) and node.module.split(".")[0] == "madx":
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("madx.")}
    return found


def modules():
    return sorted(PACKAGE.rglob("*.py"))


def test_every_package_has_a_layer():
    units = {unit_of(path) for path in modules()}
    assert units - set(RANK) == set(), "place the new package in a layer in LAYERS"
    assert set(RANK) - units == set(), "LAYERS names a package that does not exist"


def test_imports_go_downward_only():
    upward = []
    for path in modules():
        own = unit_of(path)
        for unit in imported_units(path) - {own}:
            if own == "__init__" and path.parent == PACKAGE:  # the package's lazy exports
                continue
            if unit == "__init__":  # __version__, which every layer may write into its files
                continue
            if RANK[unit] >= RANK[own]:
                upward.append(f"{path.relative_to(PACKAGE)} imports {unit} ({LAYERS[RANK[unit]][0]})")
    assert upward == []


def test_the_check_finds_an_upward_import(tmp_path, monkeypatch):
    """The rule reads relative imports from any depth, inside functions too (a test that cannot fail is a defect)."""
    fake = tmp_path / "madx"
    (fake / "adapters").mkdir(parents=True)
    (fake / "adapters" / "io.py").write_text("def f():\n    from ..training.loop import fit\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert imported_units(fake / "adapters" / "io.py") == {"training"}


@pytest.mark.parametrize("source, units", [
    ("from madx import training\n", {"training"}),  # a layer by the package's name: not the exempt __version__
    ("from madx import __version__\n", {"__init__"}),
    ("from .. import training, __version__\n", {"training"}),
    ("import madx.experiment.plan\n", {"experiment"}),
    ("from madx.report.write import x\n", {"report"}),
])
def test_the_check_reads_every_spelling_of_an_import(tmp_path, monkeypatch, source, units):
    fake = tmp_path / "madx"
    (fake / "adapters").mkdir(parents=True)
    (fake / "adapters" / "io.py").write_text(source)
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert imported_units(fake / "adapters" / "io.py") == units
