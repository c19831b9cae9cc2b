# The report: report.md (the MAD-X paper's table layout), its tables as CSV and a plot; `snakemake --report
# report.html` makes Snakemake's HTML report of them.


rule report:
    input:
        evals=EXP.eval_outputs(),
        notes=[PATHS.demo_readme()] if EXP.demo is not None else [],
        # every adapter trained, those of languages no task evaluates too (their held-out perplexity)
        lang_adapters=EXP.lang_adapter_outputs(),
    output:
        # report(): the files `snakemake --report report.html` shows, with their captions
        md=report(PATHS.report_outputs()["report_md"], caption="report/report_md.rst", category="Report"),
        csv=report(PATHS.report_outputs()["results_csv"], caption="report/results_table.rst", category="Results"),
        per_type=report(PATHS.report_outputs()["per_type_csv"], caption="report/per_type.rst", category="Results"),
        coverage=report(PATHS.report_outputs()["coverage_csv"], caption="report/coverage.rst", category="Languages"),
        png=report(PATHS.report_outputs()["results_png"], caption="report/results_plot.rst", category="Results"),
        matrix=report(PATHS.report_outputs()["matrix_png"], caption="report/matrix.rst", category="Results"),
        curves=report(PATHS.report_outputs()["lang_adapters_png"], caption="report/lang_adapters.rst",
                      category="Languages"),
    log:
        PATHS.log("report"),
    benchmark:
        PATHS.benchmark("report")
    params:
        out=lambda w, output: os.path.dirname(output.md),
        title=f"madx results: {CONFIG_FILE}",
        notes=lambda w, input: shlex.join(["--notes", *input.notes]) if input.notes else "",
    threads: EXP.compute.stage("report").threads
    resources:
        **resources("report"),
    shell:
        "madx report --eval {input.evals:q} --output {params.out:q}"
        " --title {params.title:q} --lang-adapters {input.lang_adapters:q} {params.notes} > {log:q} 2>&1"
