# Helpers for every stage: the validated experiment, paths, and command-line pieces.
# The config is checked (schema, then meaning) here, before Snakemake builds the DAG.
import shlex

from madx.experiment import ConfigError, load_experiment
from madx.setups import TRAINED_BY

CONFIG_FILE = workflow.configfiles[-1] if workflow.configfiles else "config"
try:
    EXP = load_experiment(config, CONFIG_FILE)
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None

RESULTS = EXP.results
BASE_MODEL = config["base_model"]
DEMO_BASE = f"{RESULTS}/demo/base_model"
DEMO_DATA = f"{RESULTS}/demo/data"
RESOURCE_DEFAULTS = {
    "train_lang": dict(gpus=0, threads=1, mem_mb=8000, runtime=24 * 60),
    "train_task": dict(gpus=0, threads=1, mem_mb=8000, runtime=6 * 60),
    "evaluate": dict(gpus=0, threads=1, mem_mb=4000, runtime=60),
    "demo": dict(gpus=0, threads=2, mem_mb=4000, runtime=60),
}


wildcard_constraints:
    lang=r"[A-Za-z0-9_\-]+",
    task=r"[A-Za-z0-9_\-]+",
    seed=r"\d+",


def compute(stage, key):
    return config.get("compute", {}).get(stage, {}).get(key, RESOURCE_DEFAULTS[stage][key])


def mixed_precision():
    return config.get("compute", {}).get("mixed_precision", "no")


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
        elif isinstance(value, list):
            args.extend([option, *map(str, value)])
        else:
            args += [option, str(value)]
    return shlex.join(args)


def cli_args(*sections, keys=None):
    """Config sections merged in order (later wins), as command-line options."""
    merged = {}
    for section in sections:
        merged.update(config.get(section, {}))
    return options(merged, keys)


def local_files(specs):
    """The local files among data sources (hub sources have no file to wait for)."""
    return [s for s in specs if not s.startswith("hub:")]


def get_base_model_input(wildcards=None):
    """The demo's base model is built by the workflow; a local base directory is tracked; a hub id is not."""
    if EXP.demo is not None and BASE_MODEL == DEMO_BASE:
        return [DEMO_BASE]
    return [BASE_MODEL] if os.path.exists(BASE_MODEL) else []


def get_lang_adapter(lang):
    return EXP.lang_adapter_dir(lang)


def get_task_dir(task, setup, seed):
    return f"{RESULTS}/tasks/{task}/{TRAINED_BY[setup]}/seed{seed}"


def task_data(task, split, lang):
    return EXP.tasks[task][split].replace("{lang}", lang)


def get_report_outputs():
    return [f"{RESULTS}/report/{name}" for name in ("report.md", "results.csv", "results.png")]


def get_eval_outputs():
    return [f"{RESULTS}/eval/{task}/{lang}/seed{seed}/{setup}.json" for task, lang, setup, seed in EXP.eval_targets()]


def get_task_inputs(wildcards):
    source = EXP.source_language
    files = local_files([task_data(wildcards.task, split, source) for split in ("train", "dev")])
    if wildcards.setup == "madx":
        files.append(get_lang_adapter(source))
    return files + get_base_model_input()


def get_task_options(wildcards):
    spec = EXP.tasks[wildcards.task]
    sections = ("train_task", "full_ft") if wildcards.setup == "full_ft" else ("train_task",)
    args = [
        "--task-type",
        spec["type"],
        "--train",
        task_data(wildcards.task, "train", EXP.source_language),
        "--dev",
        task_data(wildcards.task, "dev", EXP.source_language),
    ]
    if wildcards.setup == "madx":
        args.extend(["--lang-adapter", get_lang_adapter(EXP.source_language)])
    return " ".join([shlex.join(args), cli_args(*sections), cli_args("task_adapter")])


def get_eval_lang_adapter(wildcards):
    if wildcards.setup == "madx":
        return [get_lang_adapter(wildcards.lang)]
    if wildcards.setup == "source_la":
        return [get_lang_adapter(EXP.source_language)]
    return []
