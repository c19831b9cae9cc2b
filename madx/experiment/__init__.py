"""The experiment config the workflow runs: the file and its schema (schema.py), the frozen objects it is parsed
into (config.py), the paths of every output (paths.py), the plan of jobs (plan.py), the meaning checks (checks.py),
and how a job is launched on its devices (launch.py).

The names below are imported on first use (PEP 562): `madx launch`, which starts every workflow job, imports
launch.py alone, not the config's modules and the task registry (torch) behind them.
"""

import importlib as _importlib

_EXPORTS = {
    "paths": ("Paths",),
    "plan": ("Experiment", "load_experiment", "load_experiment_file"),
    "schema": ("NAME", "SECTIONS", "ConfigError", "check_config_files", "config_schema", "load_yaml"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(_importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})
