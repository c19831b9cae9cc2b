# Helpers for every stage. The config is checked (schema, then meaning) and parsed here, before Snakemake builds
# the DAG; from then on the Experiment (madx/experiment/plan.py) says every path, default and setting: no rule reads
# the raw config or spells a path.
import re
import shlex
import sys

from madx.adapters.hub import is_adapter_id
from madx.core.sources import is_hub_spec
from madx.experiment import NAME, ConfigError, OutputError, check_config_files, load_experiment


def shown_path(path):
    """A path as the user gave it: relative to where Snakemake runs when it lies below it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


CONFIG_FILE = ", ".join(shown_path(str(f)) for f in workflow.configfiles) or "config"
try:
    # Snakemake has read the file already, keeping the last of duplicate keys: read it again to refuse them
    check_config_files([shown_path(str(f)) for f in workflow.configfiles])
    EXP = load_experiment(config, CONFIG_FILE)
except OutputError as err:
    raise WorkflowError(f"cannot run on the finished outputs: {err}") from None
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None
for note in EXP.notes:
    print(f"madx: {note}", file=sys.stderr)

PATHS = EXP.paths
REMOTE_CODE = "--trust-remote-code" if EXP.trust_remote_code else ""


wildcard_constraints:
    lang=NAME,
    source=NAME,
    task=rf"{NAME}(?:\+{NAME})*",  # a task reading K-adapters: <task>+<name>...
    seed=r"\d+",


def one_of(names):
    """A wildcard constraint that matches exactly these names."""
    return "|".join(map(re.escape, names))


def options(values, keys=None):
    """Settings as pre-quoted command-line options: {"max_steps": 5} -> "--max-steps 5"."""
    args = []
    for key, value in sorted(values.items()):
        if keys is not None and key not in keys:
            continue
        flag = key.replace("_", "-")
        option = f"--{flag}"
        if isinstance(value, bool):
            args.append(option if value else f"--no-{flag}")
        elif isinstance(value, (list, tuple)):
            args.extend([option, *map(str, value)])
        else:
            args += [option, str(value)]
    return shlex.join(args)


def resources(stage, **fixed):
    """A rule's Snakemake resources: compute.<stage> of the config, or its default (madx/experiment/config.py),
    with `fixed` (e.g. gpu=0) over them; the rule's threads are EXP.compute.stage(stage).threads."""
    res = EXP.compute.stage(stage)
    return {"gpu": res.gpus, "mem_mb": res.mem_mb, "runtime": res.runtime, **fixed}


def local_files(specs):
    """The local files among data sources (hub sources have no file to wait for)."""
    return [s for s in specs if not is_hub_spec(s)]


def local_adapters(dirs):
    """The local directories among adapters (an adapter given by hub id has none to wait for: its job resolves it)."""
    return [d for d in dirs if not is_adapter_id(d)]


def get_base_model_input(wildcards=None):
    """The demo's base model is built by the workflow; a local base directory is tracked; a hub id is not."""
    if EXP.builds_base_model:
        return [EXP.base_model]
    return [EXP.base_model] if os.path.exists(EXP.base_model) else []


def get_lang_priority(wildcards):
    """The source language's adapter before the others: every task training waits on it."""
    return 10 if wildcards.lang in EXP.sources and not getattr(wildcards, "kind", None) else 0


def get_lang_training(wildcards):
    """The train-lang keys of a language's plain adapter, or of its new-script adapter (wildcard `kind`)."""
    kind = getattr(wildcards, "kind", None)
    return EXP.script_training(kind, wildcards.lang) if kind else EXP.lang_training(wildcards.lang)


def task_inputs(wildcards):
    """What a task training reads, by its train-task option: its train and dev data, and the language adapter it
    trains on, the training it starts from and the trainings it fuses (a list) where it has them."""
    task, source, setup, seed = wildcards.task, wildcards.source, wildcards.setup, wildcards.seed
    inputs = {split: EXP.task_data(task, split, source) for split in ("train", "dev")}
    inputs["lang_adapter"] = EXP.train_lang_adapter(setup, source)
    inputs["init_from"] = EXP.init_from_dir(task, source, setup, seed)
    inputs["fuse"] = EXP.fused_task_dirs(task, source, setup, seed)
    inputs["tlr_adapters"] = EXP.tlr_adapter_dirs(task, source, setup)
    inputs["knowledge"] = EXP.kadapter_dirs(task)
    return {name: path for name, path in inputs.items() if path}


def get_task_inputs(wildcards):
    inputs = task_inputs(wildcards)
    dirs = [p for name, value in inputs.items() if name not in ("train", "dev")
            for p in (value if isinstance(value, list) else [value])]
    return local_files([inputs["train"], inputs["dev"]]) + local_adapters(dirs) + get_base_model_input()


def get_task_options(wildcards):
    args = ["--task-type", EXP.tasks[wildcards.task].type]
    for name, value in task_inputs(wildcards).items():
        args += [f"--{name.replace('_', '-')}", *(value if isinstance(value, list) else [value])]
    if "fuse" in task_inputs(wildcards):
        args += ["--fusion-config", EXP.tasks[wildcards.task].fusion]
    training = EXP.task_training(wildcards.task, wildcards.setup)
    return " ".join([shlex.join(args), options(training), options(EXP.sections.task_adapter)])


def related_option(language) -> str:
    """--related LANG[=URIEL DISTANCE] ... of a target's related languages, nearest first."""
    distances = language.distances or (None,) * len(language.related)
    related = [code if d is None else f"{code}={d:.4f}" for code, d in zip(language.related, distances)]
    return f"--related {shlex.join(related)}"


def get_eval_runs(wildcards):
    """(setup, seed, task dir, language adapter, ...) of each run of this job: none, one, or the several madx_avg
    averages."""
    return [(setup, seed, EXP.task_dir(wildcards.task, wildcards.source, setup, seed),
             *EXP.eval_lang_adapters(setup, wildcards.source, wildcards.lang))
            for setup, seed in EXP.eval_runs(wildcards.task, wildcards.source, wildcards.lang)]
