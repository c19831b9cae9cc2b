"""The task-family registry is the one list of task types: the config schema, the CLI, AdapterHub's head types,
the romanizer and the demo's tasks all read it, no module outside madx/tasks compares a task type's name, and a
family registered later (a new task type) is found by every one of them."""

import ast
import dataclasses
import json
from pathlib import Path

import pytest
import torch.nn.functional as F

from madx.adapters.heads import HEAD_CONFIG
from madx.data.romanize import romanizer
from madx.tasks import families
from madx.tasks.base import Family, example_targets, inputs_of
from madx.tasks.families import FAMILIES, TASK_TYPES, family, family_classes, read_head_config, register

PACKAGE = Path(families.__file__).resolve().parents[1]


def _schema_task_types() -> list:
    from madx.experiment.schema import config_schema

    return config_schema()["$defs"]["task_type"]["enum"]


def _cli_task_types() -> list:
    from madx.commands.train_task import parser

    [action] = [a for a in parser()._actions if a.dest == "task_type"]
    return list(action.choices)


def test_every_list_of_task_types_is_the_registry():
    from madx.demo.data import DEMO_TASKS

    assert list(TASK_TYPES) == ["ner", "pos", "classification", "multiple_choice", "qa"]
    assert _schema_task_types() == list(TASK_TYPES)
    assert _cli_task_types() == list(TASK_TYPES)
    assert DEMO_TASKS == ("ner", "classification", "multiple_choice", "qa")
    assert DEMO_TASKS == tuple(t for t in TASK_TYPES if family(t).makes_demo)
    assert {t: family(t).metric for t in TASK_TYPES} == {"ner": "f1", "pos": "accuracy", "classification": "accuracy",
                                                         "multiple_choice": "accuracy", "qa": "f1"}
    assert {t: family(t).head_type for t in TASK_TYPES} == {
        "ner": "tagging", "pos": "tagging", "classification": "classification", "multiple_choice": "multiple_choice",
        "qa": "question_answering"}


def test_families_are_siblings_each_in_its_own_module():
    """No family subclasses another (each owns all of its decisions), and each lives in a module of its own."""
    classes = family_classes()
    assert len(classes) == 4
    assert all(cls.__bases__ == (Family,) for cls in classes)
    assert len({cls.__module__ for cls in classes}) == len(classes)


def _compared_strings(path: Path) -> list[tuple[int, str]]:
    """(line, string) of each string constant `path` compares with ==, !=, in or not in, or gives as a default (of
    a function's argument, or of a class attribute such as a dataclass field: a default is a decision too)."""
    found = []

    def strings(*nodes):
        for side in nodes:
            for value in (side, *getattr(side, "elts", ()), *(side.args if isinstance(side, ast.Call) else ())):
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.append((value.lineno, value.value))

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            strings(node.left, *node.comparators)
        elif isinstance(node, ast.arguments):
            strings(*node.defaults, *(d for d in node.kw_defaults if d is not None))
        elif isinstance(node, ast.ClassDef):
            strings(*(stmt.value for stmt in node.body if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value))
    return sorted(found)


def test_no_module_outside_the_families_compares_a_task_type():
    """A switch on a task type's name outside madx/tasks is a family's decision made elsewhere (adapters/heads.py
    too: each family gives its head type and layout)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "tasks":
            continue
        found += [f"{path.relative_to(PACKAGE)}:{line}: {text!r}" for line, text in _compared_strings(path)
                  if text in TASK_TYPES]
    assert found == []


@pytest.mark.parametrize("module", ["adapters/heads.py", "data/romanize.py", "demo/data.py", "demo/grammar.py"])
def test_heads_romanizer_and_demo_name_no_task_type(module):
    """What used to keep its own table of families (heads.py's head types and their inverse, the romanizer's
    switch on example types, the demo's task list) holds no task type's name, nor heads.py a head type's."""
    head_types = {cls.head_type for cls in family_classes()} if module.endswith("heads.py") else set()
    strings = {node.value for node in ast.walk(ast.parse((PACKAGE / module).read_text()))
               if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    assert strings & (set(TASK_TYPES) | head_types) == set()


def test_the_check_finds_a_comparison(tmp_path):
    (tmp_path / "m.py").write_text('def f(t):\n    return 2 if t == "multiple_choice" else None\n')
    assert _compared_strings(tmp_path / "m.py") == [(2, "multiple_choice")]


def test_the_check_finds_a_default(tmp_path):
    (tmp_path / "m.py").write_text('def f(t="ner", *, u="qa"):\n    pass\n\n\nclass S:\n'
                                   '    task_type: str = "pos"\n    other: str = option("classification", "help")\n')
    assert _compared_strings(tmp_path / "m.py") == [(1, "ner"), (1, "qa"), (6, "pos"), (7, "classification"),
                                                     (7, "help")]


# ---- a family registered later


@dataclasses.dataclass
class Arcs:
    tokens: list
    heads: list  # each word's head (0: the root)
    where: str


class DependencyParsing(Family):
    """A toy parser: each word's head, as a class over positions."""

    task_types = ("dep",)
    auto_class = "AutoModelForTokenClassification"
    head_type = "dependency_parsing"
    example_type = Arcs
    labelled = True

    @classmethod
    def main_metric(cls, task_type):
        return "uas"

    def romanize(self, examples, roman):
        return [dataclasses.replace(e, tokens=roman.words(e.tokens)) for e in examples]

    def targets(self, features, width):
        return example_targets(features)

    def loss(self, model, batch):
        return F.cross_entropy(model(**inputs_of(batch)).logits.float(), batch["labels"], reduction="sum")

    @property
    def makes_demo(self):
        return False


@pytest.fixture
def dependency_parsing():
    register(DependencyParsing)
    try:
        yield
    finally:
        FAMILIES.pop("dep")


def test_a_registered_family_is_found_everywhere(dependency_parsing, tmp_path):
    fam = family("dep")
    assert isinstance(fam, DependencyParsing) and fam.metric == "uas" and families.main_metric("dep") == "uas"
    assert "dep" in TASK_TYPES and _schema_task_types()[-1] == "dep" and _cli_task_types()[-1] == "dep"
    # the romanizer asks the family its examples belong to
    [arcs] = families.romanize_examples([Arcs(["Москва", "спит"], [2, 0], "f:1")], romanizer("demo"))
    assert arcs.tokens == ["Moskva", "spit"] and arcs.heads == [2, 0]
    # a head AdapterHub saved with this family's head type is read as its task type, with its labels
    (tmp_path / HEAD_CONFIG).write_text(json.dumps({"config": {"head_type": "dependency_parsing",
                                                               "label2id": {"root": 0, "left": 1}}}))
    head = read_head_config(tmp_path)
    assert (head["task_type"], head["label_names"]) == ("dep", ["root", "left"])


def test_a_family_cannot_take_another_familys_task_type():
    class Other(DependencyParsing):
        task_types = ("qa",)

    with pytest.raises(ValueError, match=r"task type\(s\) \['qa'\] belong to QuestionAnswering already"):
        register(Other)
    assert FAMILIES["qa"].__name__ == "QuestionAnswering"


def test_an_unknown_head_type_names_those_madx_reads(tmp_path):
    (tmp_path / HEAD_CONFIG).write_text(json.dumps({"config": {"head_type": "causal_lm"}}))
    with pytest.raises(ValueError, match="head_type 'causal_lm'; madx reads tagging, classification, multiple_choice "
                                         "and question_answering heads"):
        read_head_config(tmp_path)
