# The report: results.csv, report.md (the MAD-X paper's table layout) and a plot.


rule report:
    input:
        evals=EXP.eval_outputs(),
        notes=[PATHS.demo_readme()] if EXP.demo is not None else [],
        lang_adapters=[PATHS.lang_adapter(lang) for lang in EXP.lang_adapters_to_train()],
    output:
        PATHS.report_outputs(),
    log:
        PATHS.log("report"),
    benchmark:
        PATHS.benchmark("report")
    params:
        out=lambda w, output: os.path.dirname(output[0]),
        title=f"madx results: {CONFIG_FILE}",
        notes=lambda w, input: shlex.join(["--notes", *input.notes]) if input.notes else "",
    threads: 1
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    shell:
        "madx report --eval {input.evals:q} --output {params.out:q}"
        " --title {params.title:q} --lang-adapters {input.lang_adapters:q} {params.notes} > {log:q} 2>&1"
