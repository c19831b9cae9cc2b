# Task training on each source language: the madx task adapter (on the source language adapter),
# the task_only adapter and the full fine-tuning baseline, once per seed.
from madx.core.setups import TRAIN_SETUPS


rule train_task:
    input:
        get_task_inputs,
    output:
        directory(PATHS.task()),
    log:
        PATHS.log("train_task", "{task}", "{source}", "{setup}", "seed{seed}"),
    benchmark:
        PATHS.benchmark("train_task", "{task}", "{source}", "{setup}", "seed{seed}")
    wildcard_constraints:
        setup=one_of(TRAIN_SETUPS),
    params:
        base=EXP.base_model,
        options=get_task_options,
        remote=REMOTE_CODE,
        precision=EXP.compute.mixed_precision,
    threads: EXP.compute.stage("train_task").threads
    resources:
        **resources("train_task"),
    shell:
        "madx launch --gpus {resources.gpu} --threads {threads} --mixed-precision {params.precision} --"
        " train-task --base-model {params.base:q} --task {wildcards.task:q} --setup {wildcards.setup}"
        " --seed {wildcards.seed} --output {output:q} --lang {wildcards.source:q} --mixed-precision {params.precision}"
        " {params.options} {params.remote} > {log:q} 2>&1"
