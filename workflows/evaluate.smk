# Zero-shot evaluation: one job per (task, source, target language). It loads the base model once and swaps in
# each (setup, seed)'s adapters and head; a run whose inputs did not change since it finished is kept, not redone
# (madx/evaluation/evaluate.py), so adding a seed or retraining one language adapter computes only what changed.
from madx.core.setups import SETUPS


rule evaluate:
    input:
        task_dirs=lambda w: local_adapters(dict.fromkeys(run[2] for run in get_eval_runs(w))),
        lang_adapters=lambda w: local_adapters(dict.fromkeys(d for run in get_eval_runs(w) for d in run[3:])),
        test=lambda w: local_files([EXP.task_data(w.task, "test", w.lang)]),
        base=get_base_model_input,
    output:
        PATHS.evaluations(),
    log:
        PATHS.log("evaluate", "{task}", "{source}", "{lang}"),
    benchmark:
        PATHS.benchmark("evaluate", "{task}", "{source}", "{lang}")
    params:
        base=EXP.base_model,
        test=lambda w: EXP.task_data(w.task, "test", w.lang),
        # --run SETUP SEED TASK_DIR [LANG_ADAPTER ...], once per run; the runs are part of the job's definition
        runs=lambda w: " ".join("--run " + shlex.join(str(part) for part in run)
                                for run in get_eval_runs(w)),
        each=lambda w: PATHS.evaluation(w.task, w.source, w.lang, "{setup}", "{seed}"),
        # romanizing runs (madx_translit) read the test data through the target's romanizer
        romanize=lambda w: (f"--romanize {shlex.quote(EXP.languages[w.lang].romanize)}"
                            if any(SETUPS[run[0]].romanizes for run in get_eval_runs(w)) else ""),
        # madx_emea runs: their test-time steps (the config's emea section)
        emea=lambda w: (f"--emea-steps {EXP.emea_settings().steps} --emea-lr {EXP.emea_settings().lr}"
                        if any(SETUPS[run[0]].test_time_weights for run in get_eval_runs(w)) else ""),
        # related-language runs (madx_nearest, madx_avg, madx_emea): which languages they stack, and how near
        related=lambda w: (related_option(EXP.languages[w.lang])
                           if any(SETUPS[run[0]].related for run in get_eval_runs(w)) else ""),
        remote=REMOTE_CODE,
        precision=EXP.compute.mixed_precision,
    threads: EXP.compute.stage("evaluate").threads
    resources:
        **resources("evaluate"),
    shell:
        "madx launch --gpus {resources.gpu} --threads {threads} --no-accelerate --"
        " evaluate --base-model {params.base:q} {params.runs} --each {params.each:q} --test {params.test:q}"
        " --output {output:q} --task {wildcards.task:q} --source {wildcards.source:q} --lang {wildcards.lang:q}"
        " --mixed-precision {params.precision} {params.romanize} {params.emea} {params.related} {params.remote}"
        " > {log:q} 2>&1"
