# Language adapters: MLM on each language's corpus (skipped for a language given a ready `adapter:`).


rule train_lang_adapter:
    input:
        corpus=lambda w: local_files(EXP.languages[w.lang]["corpus"]),
        base=get_base_model_input,
    output:
        directory(f"{RESULTS}/adapters/lang/{{lang}}"),
    log:
        "logs/train_lang/{lang}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_lang/{{lang}}.tsv"
    params:
        base=BASE_MODEL,
        corpus=lambda w: EXP.languages[w.lang]["corpus"],
        max_tokens=lambda w: options({"max_tokens": EXP.languages[w.lang]["max_tokens"]})
        if EXP.languages[w.lang]["max_tokens"]
        else "",
        adapter=cli_args("lang_adapter"),
        train=cli_args("train_lang"),
        remote=("--trust-remote-code" if config.get("trust_remote_code") else ""),
        precision=mixed_precision(),
        cache=f"{RESULTS}/corpora",
    threads: compute("train_lang", "threads")
    resources:
        gpu=compute("train_lang", "gpus"),
        mem_mb=compute("train_lang", "mem_mb"),
        runtime=compute("train_lang", "runtime"),
    shell:
        "madx launch --gpus {resources.gpu} --threads {threads} --mixed-precision {params.precision} --"
        " train-lang --base-model {params.base:q} --lang {wildcards.lang:q} --corpus {params.corpus:q}"
        " --output {output:q} --cache-dir {params.cache:q} --mixed-precision {params.precision}"
        " {params.adapter} {params.train} {params.max_tokens} {params.remote} > {log:q} 2>&1"
