# The offline demo: a synthetic benchmark (one job per language) and a small base model, both made here (no
# network). Its languages are the config's demo.languages: adding a line there adds a language.
import dataclasses

from madx.demo.data import DEMO_TASKS, SPLITS

if EXP.demo is not None:
    DEMO = EXP.demo

    rule demo_language:
        output:
            corpus=PATHS.demo_corpus(),
            tasks=[PATHS.demo_task_file(split=split, kind=kind) for split in SPLITS
                   for kind in DEMO_TASKS],
            treebanks=[PATHS.demo_treebank(split=split) for split in SPLITS],
        log:
            PATHS.log("demo", "data", "{lang}"),
        benchmark:
            PATHS.benchmark("demo", "data", "{lang}")
        wildcard_constraints:
            lang=one_of(lang.code for lang in DEMO.languages),
        params:
            out=lambda w, output: os.path.dirname(os.path.dirname(output.corpus)),
            language=lambda w: DEMO.language_spec(w.lang),  # what its data depends on
            sizes=options(dataclasses.asdict(DEMO.data)),
        threads: 1  # the demo's memory and time, on one CPU thread
        resources:
            **resources("demo", gpu=0),
        shell:
            "madx demo-data --output {params.out:q} --language {params.language:q} {params.sizes} > {log:q} 2>&1"

    rule demo_readme:
        output:
            PATHS.demo_readme(),
        log:
            PATHS.log("demo", "readme"),
        params:
            out=lambda w, output: os.path.dirname(output[0]),
            languages=[DEMO.language_spec(lang.code, flags=True) for lang in DEMO.languages],
        threads: EXP.compute.stage("demo_readme").threads
        resources:
            **resources("demo_readme"),
        shell:
            "madx demo-data --readme --output {params.out:q} --language {params.languages:q} > {log:q} 2>&1"

    rule demo_base_model:
        input:
            corpora=[PATHS.demo_corpus(lang) for lang in dict.fromkeys(DEMO.tokenizer_languages() + DEMO.seen())],
        output:
            directory(PATHS.demo_base_model()),
        log:
            PATHS.log("demo", "base_model"),
        benchmark:
            PATHS.benchmark("demo", "base_model")
        params:
            seen=[PATHS.demo_corpus(lang) for lang in DEMO.seen()],
            tokenizer=[PATHS.demo_corpus(lang) for lang in DEMO.tokenizer_languages()],
            shape=options(dataclasses.asdict(DEMO.shape)),
            train=options(DEMO.pretrain),
        threads: EXP.compute.stage("demo").threads
        resources:
            **resources("demo"),
        shell:
            "madx launch --gpus {resources.gpu} --threads {threads} -- build-base --corpus {params.seen:q}"
            " --tokenizer-corpus {params.tokenizer:q} --output {output:q} {params.shape} {params.train} > {log:q} 2>&1"
