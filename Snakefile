# madx: MAD-X cross-lingual transfer, one config, one command.
#   snakemake --cores all                                 (the offline demo: configs/config.yaml)
#   snakemake --cores all --configfile configs/xlmr-wikiann.yaml --resources gpu=4
#   snakemake --profile configs/profiles/slurm --configfile configs/xlmr-wikiann.yaml
from snakemake.utils import min_version

min_version("9.27")


# The demo's config only when no --configfile is given: a given config is the whole experiment (Snakemake
# would otherwise merge it over this file, and the demo's languages and settings would leak into it).
if not workflow.overwrite_configfiles:

    configfile: "configs/config.yaml"



include: "workflows/common.smk"
include: "workflows/demo.smk"
include: "workflows/lang_adapters.smk"
include: "workflows/knowledge.smk"
include: "workflows/tasks.smk"
include: "workflows/evaluate.smk"
include: "workflows/report.smk"


# Every evaluation and the report, and every adapter as a product of its own: a configured result that cannot be
# made is then an error naming it, never an old report taken as up to date, and a lost adapter is rebuilt even
# where the evaluations made from it are still there.
rule all:
    input:
        EXP.eval_outputs(),
        EXP.lang_adapter_outputs(),
        EXP.task_outputs(),
        EXP.kadapter_outputs(),
        PATHS.report_outputs().values(),
    default_target: True
