# Zero-shot evaluation: every (task, source, target language, setup, seed).


rule evaluate:
    input:
        task_dir=lambda w: EXP.task_dir(w.task, w.source, w.setup, w.seed),
        lang_adapter=get_eval_lang_adapter,
        test=lambda w: local_files([EXP.task_data(w.task, "test", w.lang)]),
        base=get_base_model_input,
    output:
        PATHS.evaluation(),
    log:
        PATHS.log("evaluate", "{task}", "{source}", "{lang}", "seed{seed}", "{setup}"),
    benchmark:
        PATHS.benchmark("evaluate", "{task}", "{source}", "{lang}", "seed{seed}", "{setup}")
    wildcard_constraints:
        setup=one_of(EVAL_SETUPS),
    params:
        base=EXP.base_model,
        test=lambda w: EXP.task_data(w.task, "test", w.lang),
        lang_adapter=lambda w, input: shlex.join(["--lang-adapter", *input.lang_adapter])
        if input.lang_adapter
        else "",
        remote=REMOTE_CODE,
        precision=EXP.mixed_precision,
    threads: EXP.compute("evaluate", "threads")
    resources:
        gpu=EXP.compute("evaluate", "gpus"),
        mem_mb=EXP.compute("evaluate", "mem_mb"),
        runtime=EXP.compute("evaluate", "runtime"),
    shell:
        "madx launch --gpus {resources.gpu} --threads {threads} --no-accelerate --"
        " evaluate --base-model {params.base:q} --setup {wildcards.setup} --task-dir {input.task_dir:q}"
        " {params.lang_adapter} --test {params.test:q} --output {output:q} --task {wildcards.task:q}"
        " --source {wildcards.source:q} --lang {wildcards.lang:q} --seed {wildcards.seed}"
        " --mixed-precision {params.precision}"
        " {params.remote} > {log:q} 2>&1"
