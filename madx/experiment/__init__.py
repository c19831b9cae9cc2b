"""The experiment config the workflow runs: the file and its schema (schema.py), the frozen objects it is parsed
into (config.py), the paths of every output (paths.py), the plan of jobs (plan.py), the meaning checks (checks.py),
and how a job is launched on its devices (launch.py).

The names below are imported on first use (PEP 562): `madx launch`, which starts every workflow job, imports
launch.py alone, not the config's modules and the task registry (torch) behind them.
"""

from ..core.lazy import lazy_exports as _lazy_exports

_EXPORTS = {
    "paths": ("Paths",),
    "checks": ("OutputError",),
    "plan": ("Experiment", "load_experiment", "load_experiment_file"),
    "schema": ("NAME", "SECTIONS", "ConfigError", "check_config_files", "config_schema", "load_yaml"),
}
__getattr__, __dir__, __all__ = _lazy_exports(__name__, _EXPORTS)
