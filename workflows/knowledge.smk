# K-adapters (Wang et al. 2021): each of the config's knowledge section trained once beside the frozen base model, on
# its knowledge task's files of every language it names; the tasks that read it (tasks.<t>.knowledge) wait for it.


rule train_kadapter:
    input:
        lambda w: local_files(EXP.knowledge[w.name].data("train") + EXP.knowledge[w.name].data("dev")),
        get_base_model_input,
    output:
        directory(PATHS.kadapter()),
    log:
        PATHS.log("train_kadapter", "{name}"),
    benchmark:
        PATHS.benchmark("train_kadapter", "{name}")
    wildcard_constraints:
        name=one_of(EXP.knowledge),
    params:
        base=EXP.base_model,
        type=lambda w: EXP.knowledge[w.name].type,
        train=lambda w: EXP.knowledge[w.name].data("train"),
        dev=lambda w: EXP.knowledge[w.name].data("dev"),
        options=lambda w: " ".join([options(EXP.knowledge[w.name].kadapter),
                                    options(EXP.knowledge[w.name].train_knowledge)]),
        remote=REMOTE_CODE,
    threads: EXP.compute.stage("train_task").threads
    resources:
        **resources("train_task"),
    shell:
        "madx launch --gpus {resources.gpu} --threads {threads} -- train-kadapter --base-model {params.base:q}"
        " --name {wildcards.name:q} --type {params.type} --train {params.train:q} --dev {params.dev:q}"
        " --output {output:q} {params.options} {params.remote} > {log:q} 2>&1"
