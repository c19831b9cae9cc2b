"""One source of truth: each default, enumeration and path pattern lives in one place, and the library, the
commands, the config schema and the workflow all read it from there."""

import dataclasses
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from madx.adapters.config import LANGUAGE_ADAPTER, TASK_ADAPTER, AdapterConfig
from madx.commands import build_base, demo_data, train_lang, train_task
from madx.commands.common import dataclass_from
from madx.core.settings import LangTraining, PretrainSettings, TaskTraining
from madx.demo.base_model import build_base_model
from madx.demo.data import DemoData, DemoLanguage, TinyEncoder, generate_language
from madx.experiment import SECTIONS, config_schema
from madx.training.language import train_language_adapter
from madx.training.task import train_task as train_task_fn

REPO = Path(__file__).resolve().parents[1]
COMMANDS = [
    (train_lang, ["--base-model", "m", "--lang", "sw", "--corpus", "c.txt", "--output", "o"],
     [(LangTraining, LangTraining()), (AdapterConfig, LANGUAGE_ADAPTER)]),
    (train_task, ["--base-model", "m", "--task", "ner", "--train", "t", "--dev", "d", "--output", "o"],
     [(TaskTraining, TaskTraining()), (AdapterConfig, TASK_ADAPTER)]),
    (build_base, ["--corpus", "c", "--tokenizer-corpus", "c", "--output", "o"],
     [(PretrainSettings, PretrainSettings()), (TinyEncoder, TinyEncoder())]),
    (demo_data, ["--output", "o", "--language", "en:SVO:latin"], [(DemoData, DemoData())]),
]


@pytest.mark.parametrize("command,argv,expected", COMMANDS, ids=lambda c: getattr(c, "__name__", "")[13:] or None)
def test_command_defaults_are_the_library_defaults(command, argv, expected):
    args = command.parser().parse_args(argv)
    for cls, default in expected:
        assert dataclass_from(cls, args) == default


def test_library_functions_default_to_the_same_settings():
    def default(fn, name):
        return inspect.signature(fn).parameters[name].default

    assert default(train_language_adapter, "settings") == LangTraining()
    assert default(train_language_adapter, "adapter_config") == LANGUAGE_ADAPTER
    assert default(train_task_fn, "settings") == TaskTraining()
    assert default(train_task_fn, "adapter_config") == TASK_ADAPTER
    assert default(build_base_model, "settings") == PretrainSettings()
    assert default(build_base_model, "shape") == TinyEncoder()
    assert default(generate_language, "data") == DemoData()


def test_every_option_has_a_command_line_flag_and_a_config_key():
    """A settings field is an option of its command and (unless the config sets it elsewhere) a config key."""
    schema = config_schema()
    for section, (cls, skip) in SECTIONS.items():
        ref = schema["properties"][section]["$ref"].rsplit("/", 1)[1]
        keys = set(schema["$defs"][ref]["properties"])
        assert keys == {f.name for f in dataclasses.fields(cls)} - set(skip), section
    options = {a.dest for a in train_lang.parser()._actions}
    assert {f.name for f in dataclasses.fields(LangTraining)} - {"eval_every"} <= options
    demo_keys = set(schema["properties"]["demo"]["properties"])
    assert {f.name for f in dataclasses.fields(DemoData)} | {f.name for f in dataclasses.fields(TinyEncoder)} <= demo_keys
    assert set(schema["$defs"]["demo_language"]["properties"]) == {f.name for f in dataclasses.fields(DemoLanguage)} - {"code"}


def test_no_workflow_file_spells_a_path_or_reads_the_raw_config():
    for smk in [REPO / "Snakefile", *sorted((REPO / "workflows").glob("*.smk"))]:
        text = smk.read_text()
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        assert not re.search(r"config\[|config\.get\(", code), smk
        assert not re.search(r"[\"'](results|logs)/", code.replace('"configs/config.yaml"', "")), smk
        assert "madx|" not in code and "pfeiffer" not in code, smk  # enumerations come from madx


def test_the_schema_ships_in_the_package(tmp_path):
    """`pip install .` (not editable) and `madx check-config` from outside the repository."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "--target", str(target), str(REPO)], check=True,
                   capture_output=True)
    assert (target / "madx" / "experiment" / "config.schema.yaml").is_file()
    config = tmp_path / "c.yaml"
    config.write_text((REPO / "configs" / "xlmr-wikiann.yaml").read_text())
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", "import sys; from madx.cli import main; sys.exit(main())",
                           "check-config", str(config)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "20 languages" in proc.stdout
    import_path = subprocess.run([sys.executable, "-c", "import madx; print(madx.__file__)"], cwd=tmp_path, env=env,
                                 capture_output=True, text=True).stdout
    assert import_path.startswith(str(target))  # the installed copy, not the repository's
