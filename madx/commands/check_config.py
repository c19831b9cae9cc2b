"""madx check-config CONFIG.yaml: validate an experiment config the way the workflow does, and summarise it."""

from __future__ import annotations

import argparse

from .common import run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madx check-config", description=__doc__)
    p.add_argument("config")
    p.add_argument("--no-file-check", action="store_true", help="do not require local data files to exist")
    p.add_argument("--log-file")
    return p


def _body(args) -> None:
    from ..core.setups import FUSION_SETUPS
    from ..experiment import load_experiment_file

    exp = load_experiment_file(args.config, check_files=not args.no_file_check)
    print(f"{args.config}: ok — {len(exp.languages)} languages, {len(exp.tasks)} task(s), source(s) "
          f"{', '.join(exp.sources)}, seeds {list(exp.seeds)}, setups {list(exp.setups)}; {len(exp.lang_adapters_to_train())} "
          f"language adapters to train, {len(exp.eval_targets())} evaluations in {len(exp.eval_jobs())} jobs (one per "
          "task, source and target)")
    for name, task in exp.tasks.items():
        if task.setups:
            print(f"  {name}: its own setups {list(task.setups)}")
        for source, adapter in task.adapters.items():
            print(f"  {name}: a ready task adapter from {source}, {adapter}: evaluated once (seed {exp.seeds[0]}) under "
                  "the setups that read madx's, none trained")
        if task.fuse:
            fused = ", ".join([name, *task.fuse])
            print(f"  {name}: {', '.join(FUSION_SETUPS)}, a {task.fusion} fusion of the madx task adapters of {fused} per source and "
                  f"seed, trained on {name}'s data")
    for lang, language in exp.languages.items():
        if language.related:
            own = "its own adapter and " if language.has_adapter else "no adapter of its own (no corpus): no madx; "
            chosen = (", ".join(f"{code} ({d:.3f})" for code, d in zip(language.related, language.distances))
                      + " by URIEL distance") if language.distances else ", ".join(language.related)
            print(f"  {lang}: {own}related languages {chosen}: madx_nearest stacks {language.related[0]}'s adapter, "
                  f"madx_avg and madx_emea the average of {', '.join(language.averaged)}")
    for lang in exp.adapter_only_languages():
        print(f"  {lang}: language adapter only (no task has test data for it): trained, and its held-out perplexity "
              "reported")
    for note in exp.notes:
        print(f"  note: {note}")
    if exp.builds_base_model:
        print(f"  base_model {exp.base_model}: built by the demo; its tokenizer is checked by the jobs that load it")


def main(argv=None) -> int:
    return run(parser(), _body, argv)
