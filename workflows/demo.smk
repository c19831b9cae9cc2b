# The offline demo: a synthetic benchmark and a small base model, both made here (no network).
from madx.demo import LANGUAGES as DEMO_LANGUAGES

DEMO = EXP.demo or {}


rule demo_data:
    output:
        corpora=expand(f"{DEMO_DATA}/corpora/{{lang}}.txt", lang=[l.code for l in DEMO_LANGUAGES]),
        train=f"{DEMO_DATA}/ner/en.train.conll",
        dev=f"{DEMO_DATA}/ner/en.dev.conll",
        test=expand(f"{DEMO_DATA}/ner/{{lang}}.test.conll", lang=[l.code for l in DEMO_LANGUAGES]),
        readme=f"{DEMO_DATA}/README.md",
    log:
        "logs/demo/data.log",
    benchmark:
        f"{RESULTS}/benchmarks/demo/data.tsv"
    params:
        out=lambda w, output: os.path.dirname(output.readme),
        seed=DEMO.get("seed", 0),
        sizes=options(DEMO, keys=("corpus_sentences", "train_sentences", "dev_sentences", "test_sentences")),
    threads: 1
    resources:
        gpu=0,
        mem_mb=compute("demo", "mem_mb"),
        runtime=compute("demo", "runtime"),
    shell:
        "madx demo-data --output {params.out:q} --seed {params.seed} {params.sizes} > {log:q} 2>&1"


rule demo_base_model:
    input:
        corpora=rules.demo_data.output.corpora,
    output:
        directory(DEMO_BASE),
    log:
        "logs/demo/base_model.log",
    benchmark:
        f"{RESULTS}/benchmarks/demo/base_model.tsv"
    params:
        seen=expand(f"{DEMO_DATA}/corpora/{{lang}}.txt", lang=DEMO.get("base_languages", [l.code for l in DEMO_LANGUAGES if l.in_base])),
        shape=options(
            DEMO,
            keys=("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                  "max_seq_len", "dropout"),
        ),
        train=options(DEMO.get("pretrain", {})),
    threads: compute("demo", "threads")
    resources:
        gpu=compute("demo", "gpus"),
        mem_mb=compute("demo", "mem_mb"),
        runtime=compute("demo", "runtime"),
    shell:
        "madx launch --gpus {resources.gpu} --threads {threads} -- build-base --corpus {params.seen:q}"
        " --tokenizer-corpus {input.corpora:q} --output {output:q} {params.shape} {params.train} > {log:q} 2>&1"
