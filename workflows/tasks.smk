# Task training on the source language: the madx task adapter (on the source language adapter),
# the task_only adapter and the full fine-tuning baseline, once per seed.


rule train_task:
    input:
        get_task_inputs,
    output:
        directory(f"{RESULTS}/tasks/{{task}}/{{setup}}/seed{{seed}}"),
    log:
        "logs/train_task/{task}/{setup}/seed{seed}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_task/{{task}}/{{setup}}/seed{{seed}}.tsv"
    wildcard_constraints:
        setup="madx|task_only|full_ft",
    params:
        base=BASE_MODEL,
        options=get_task_options,
        remote=("--trust-remote-code" if config.get("trust_remote_code") else ""),
        precision=mixed_precision(),
    threads: compute("train_task", "threads")
    resources:
        gpu=compute("train_task", "gpus"),
        mem_mb=compute("train_task", "mem_mb"),
        runtime=compute("train_task", "runtime"),
    shell:
        "madx launch --gpus {resources.gpu} --threads {threads} --mixed-precision {params.precision} --"
        " train-task --base-model {params.base:q} --task {wildcards.task:q} --setup {wildcards.setup}"
        " --seed {wildcards.seed} --output {output:q} --mixed-precision {params.precision}"
        " {params.options} {params.remote} > {log:q} 2>&1"
