# Zero-shot evaluation: every (task, language, setup, seed).


rule evaluate:
    input:
        task_dir=lambda w: get_task_dir(w.task, w.setup, w.seed),
        lang_adapter=get_eval_lang_adapter,
        test=lambda w: local_files([task_data(w.task, "test", w.lang)]),
        base=get_base_model_input,
    output:
        f"{RESULTS}/eval/{{task}}/{{lang}}/seed{{seed}}/{{setup}}.json",
    log:
        "logs/evaluate/{task}/{lang}/seed{seed}/{setup}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{task}}/{{lang}}/seed{{seed}}/{{setup}}.tsv"
    wildcard_constraints:
        setup="madx|source_la|task_only|full_ft",
    params:
        base=BASE_MODEL,
        test=lambda w: task_data(w.task, "test", w.lang),
        lang_adapter=lambda w, input: shlex.join(["--lang-adapter", *input.lang_adapter])
        if input.lang_adapter
        else "",
        remote=("--trust-remote-code" if config.get("trust_remote_code") else ""),
        precision=mixed_precision(),
    threads: compute("evaluate", "threads")
    resources:
        gpu=compute("evaluate", "gpus"),
        mem_mb=compute("evaluate", "mem_mb"),
        runtime=compute("evaluate", "runtime"),
    shell:
        "madx launch --gpus {resources.gpu} --threads {threads} --no-accelerate --"
        " evaluate --base-model {params.base:q} --setup {wildcards.setup} --task-dir {input.task_dir:q}"
        " {params.lang_adapter} --test {params.test:q} --output {output:q} --task {wildcards.task:q}"
        " --lang {wildcards.lang:q} --seed {wildcards.seed} --mixed-precision {params.precision}"
        " {params.remote} > {log:q} 2>&1"
