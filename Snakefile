# madx: MAD-X cross-lingual transfer, one config, one command.
#   snakemake --cores all                                 (the offline demo: configs/config.yaml)
#   snakemake --cores all --configfile configs/xlmr-wikiann.yaml --resources gpu=4
#   snakemake --profile configs/profiles/slurm --configfile configs/xlmr-wikiann.yaml
from snakemake.utils import min_version

min_version("9.0")


configfile: "configs/config.yaml"


include: "workflows/common.smk"
include: "workflows/demo.smk"
include: "workflows/lang_adapters.smk"
include: "workflows/tasks.smk"
include: "workflows/evaluate.smk"
include: "workflows/report.smk"


rule all:
    input:
        get_report_outputs(),
    default_target: True
