"""Every path the workflow writes, in one place: the rules' output patterns and the files themselves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..demo.data import corpus_path, task_path, treebank_path

RESULTS = "results"  # the output root when the config's `results` does not say


@dataclass(frozen=True)
class Paths:
    """Every path the workflow writes. Called with wildcard names ("{lang}") it gives the rules' patterns,
    with values the files themselves: one format string each."""

    results: str = RESULTS

    def lang_adapter(self, lang="{lang}") -> str:
        return f"{self.results}/adapters/lang/{lang}"

    def script_adapter(self, kind="{kind}", lang="{lang}") -> str:
        """A language's adapter for a new-script setup: kind translit (romanized corpus) or emb (new embeddings)."""
        return f"{self.results}/adapters/lang_{kind}/{lang}"

    def corpus_cache(self) -> str:
        return f"{self.results}/corpora"

    def task(self, task="{task}", source="{source}", setup="{setup}", seed="{seed}") -> str:
        return f"{self.results}/tasks/{task}/{source}/{setup}/seed{seed}"

    def evaluation(self, task="{task}", source="{source}", lang="{lang}", setup="{setup}", seed="{seed}") -> str:
        """Zero-shot transfer of `task` from `source` to `lang`."""
        return f"{self.results}/eval/{task}/{source}/{lang}/seed{seed}/{setup}.json"

    def evaluations(self, task="{task}", source="{source}", lang="{lang}") -> str:
        """Every (setup, seed) of one (task, source, target): the evaluation job's output (each run also has its
        own file, `evaluation()`, which a rerun of the job keeps when its inputs did not change)."""
        return f"{self.results}/eval/{task}/{source}/{lang}/results.json"

    def report(self, name: str = "") -> str:
        return f"{self.results}/report/{name}".rstrip("/")

    def report_outputs(self) -> dict[str, str]:
        """The report's files, by name: report.md and the tables and plot it is made of."""
        return {name.replace(".", "_"): self.report(name)
                for name in ("report.md", "results.csv", "per_type.csv", "coverage.csv", "results.png", "matrix.png",
                             "lang_adapters.png")}

    def benchmark(self, *parts: str) -> str:
        """Snakemake's per-job time and memory."""
        return f"{self.results}/benchmarks/{'/'.join(parts)}.tsv"

    def log(self, *parts: str) -> str:
        """A job's log, under `logs/` where Snakemake runs; a run with its own results folder keeps its logs apart
        too (results/xlmr-wikiann -> logs/xlmr-wikiann/), so two configs never write each other's logs."""
        root = "logs" if self.results == RESULTS else f"logs/{Path(self.results).name}"
        return f"{root}/{'/'.join(parts)}.log"

    def demo_data(self) -> str:
        return f"{self.results}/demo/data"

    def demo_base_model(self) -> str:
        return f"{self.results}/demo/base_model"

    def demo_corpus(self, lang="{lang}") -> str:
        return str(corpus_path(self.demo_data(), lang))  # the layout madx/demo/data.py writes

    def demo_task_file(self, lang="{lang}", split="{split}", *, kind: str) -> str:
        return str(task_path(self.demo_data(), lang, split, kind))

    def demo_treebank(self, lang="{lang}", split="{split}") -> str:
        return str(treebank_path(self.demo_data(), lang, split))

    def kadapter(self, name="{name}") -> str:
        """A K-adapter of the config's knowledge section (madx train-kadapter)."""
        return f"{self.results}/adapters/knowledge/{name}"

    def demo_readme(self) -> str:
        return f"{self.demo_data()}/README.md"
