"""The experiment config the workflow runs: the file and its schema (schema.py), the frozen objects it is parsed
into (config.py), the paths of every output (paths.py), the plan of jobs (plan.py), the meaning checks (checks.py),
and how a job is launched on its devices (launch.py)."""

from .paths import Paths
from .plan import Experiment, load_experiment, load_experiment_file
from .schema import NAME, SECTIONS, ConfigError, check_config_files, config_schema, load_yaml

__all__ = ["NAME", "SECTIONS", "ConfigError", "Experiment", "Paths", "check_config_files", "config_schema",
           "load_experiment", "load_experiment_file", "load_yaml"]
