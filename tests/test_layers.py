"""madx's modules form layers, and a module imports only from layers below its own: the adapter maths never
depends on training, training never on the workflow, and the commands sit on top of everything."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "madx"
LAYERS = [
    ("foundations", {"settings", "files", "setups", "sources", "metrics", "locks", "batching",
                     "coverage", "launch"}),
    ("types and data", {"config", "shapes", "accelerator", "checkpoints", "demo", "labelled", "texts", "corpus", "scores",
                        "profiling"}),
    ("adapter modules, progress, figures, QA spans, romanization, tokenizers",
     {"modules", "progress", "plots", "qa", "translit", "spm"}),
    ("adapters in a model", {"model"}),
    ("loading and saving, objectives, task families, embeddings",
     {"hf", "io", "heads", "mlm", "families", "embeddings"}),
    ("the training loop", {"train"}),
    ("training, reports, the experiment", {"lang_adapter", "task", "base", "report", "experiment"}),
    ("evaluation and benchmarks", {"evaluate", "bench"}),
    ("the package and its commands", {"__init__", "cli", "commands"}),
]
RANK = {name: rank for rank, (_, names) in enumerate(LAYERS) for name in names}


def imports_of(path: Path) -> set[str]:
    """The madx modules `path` imports (relative imports)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            inside_commands = path.parent.name == "commands"
            if node.module and not (inside_commands and node.level == 1):
                found.add(node.module.split(".")[0])
            elif not node.module and node.level == 1 and not inside_commands:
                found |= {alias.name for alias in node.names if alias.name in RANK}
    return found - {"__version__"}


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules - set(RANK) == set(), "place the new module in a layer in LAYERS"


def test_imports_go_downward_only():
    upward = []
    for path in [*PACKAGE.glob("*.py"), *(PACKAGE / "commands").glob("*.py")]:
        own = RANK["commands"] if path.parent.name == "commands" else RANK[path.stem]
        for imported in imports_of(path):
            if RANK[imported] >= own and not (path.parent.name == "commands" or path.stem == "__init__"):
                upward.append(f"{path.relative_to(PACKAGE)} imports {imported} ({LAYERS[RANK[imported]][0]})")
    assert upward == []
