"""The experiment config the workflow runs: its schema and checks, the paths of every output, the plan of jobs,
and how a job is launched on its devices."""

from .plan import (NAME, SECTIONS, ConfigError, Experiment, Paths, check_config_files, config_schema, load_experiment,
                   load_experiment_file, load_yaml)

__all__ = ["NAME", "SECTIONS", "ConfigError", "Experiment", "Paths", "check_config_files", "config_schema",
           "load_experiment", "load_experiment_file", "load_yaml"]
