# Language adapters: MLM on each language's corpus (skipped for a language given a ready `adapter:`); for a
# language that asks for a new-script setup, also its adapter on the romanized corpus (madx_translit) or with
# new input embeddings (madx_emb).
from madx.core.setups import ADAPTER_KINDS


# the shell command of every language adapter's training (its params say which, and how)
TRAIN_LANG_SHELL = (
    "madx launch --gpus {resources.gpu} --threads {threads} --mixed-precision {params.precision} --"
    " train-lang --base-model {params.base:q} --lang {wildcards.lang:q} --corpus {params.corpus:q}"
    " --output {output:q} --cache-dir {params.cache:q} --mixed-precision {params.precision}"
    " {params.adapter} {params.train} {params.remote} > {log:q} 2>&1"
)


rule train_lang_adapter:
    input:
        corpus=lambda w: local_files(EXP.languages[w.lang].corpus),
        base=get_base_model_input,
    output:
        directory(PATHS.lang_adapter()),
    log:
        PATHS.log("train_lang", "{lang}"),
    benchmark:
        PATHS.benchmark("train_lang", "{lang}")
    priority: get_lang_priority
    params:
        base=EXP.base_model,
        corpus=lambda w: EXP.languages[w.lang].corpus,
        adapter=options(EXP.sections.lang_adapter),
        train=lambda w: options(get_lang_training(w)),
        remote=REMOTE_CODE,
        precision=EXP.compute.mixed_precision,
        cache=PATHS.corpus_cache(),
    threads: EXP.compute.stage("train_lang").threads
    resources:
        **resources("train_lang"),
    shell:
        TRAIN_LANG_SHELL


# a language's adapter for a new-script setup (madx_translit, madx_emb): the same training, its own output and the
# train-lang options of its kind (get_lang_training)
use rule train_lang_adapter as train_script_adapter with:
    output:
        directory(PATHS.script_adapter()),
    log:
        PATHS.log("train_lang_{kind}", "{lang}"),
    benchmark:
        PATHS.benchmark("train_lang_{kind}", "{lang}")
    wildcard_constraints:
        kind=one_of(ADAPTER_KINDS),
