"""The README.md model card of every adapter directory madx writes, in the layout the Hugging Face Hub shows (YAML
metadata between `---` lines, then Markdown), so that a directory can be published as it is: what it was trained
on, with which budget, how well it did, and how to load it in madx and in AdapterHub. Read from the training's
record (training.json, task.json): a card says nothing the record does not, and no evaluation depends on it
(evaluation/fingerprints.py leaves it out of a result's inputs)."""

from __future__ import annotations

from .. import __version__
from ..core.files import CHECKSUMS
from ..core.setups import training
from ..core.sources import looks_like_a_path

CARD = "README.md"


def _front_matter(base_model: str, tags: list[str], language: str | None = None) -> list[str]:
    lines = ["---", "library_name: adapters", "tags:", *(f"- {tag}" for tag in ["madx", "adapters", *tags])]
    if language:
        lines += ["language:", f"- {language}"]
    if not looks_like_a_path(base_model):  # a hub id: the Hub links the base
        lines.append(f"base_model: {base_model}")
    return [*lines, "---", ""]


def _loading(name: str, with_head: bool) -> list[str]:
    head = ", with_head=True" if with_head else ""
    return ["## How to load it", "", "In madx:", "", "```python", "import madx",
            f'name = madx.load_adapter(model, "path/to/this/directory")  # "{name}"', "```", "",
            "In AdapterHub's `adapters`:", "", "```python", "import adapters", "adapters.init(model)",
            f'model.load_adapter("path/to/this/directory", use_safetensors=True{head})', "```", "",
            f"{CHECKSUMS} holds the sha256 of each weights file; madx verifies them when it loads the directory "
            "(AdapterHub ignores the file).", ""]


def language_card(record: dict) -> str:
    """The card of a language adapter (madx train-lang's output), from its training.json record."""
    settings, lang, heldout = record["settings"], record["lang"], record.get("heldout") or {}
    if heldout.get("base_perplexity") is not None:
        quality = (f"held-out MLM perplexity {heldout['perplexity']:.2f} with the adapter, "
                   f"{heldout['base_perplexity']:.2f} for the base model alone ({heldout['blocks']} held-out blocks)")
    elif heldout:
        quality = f"held-out MLM perplexity {heldout['perplexity']:.2f} ({heldout['blocks']} held-out blocks)"
    else:
        too_few = ("the step budget reads too few blocks of the stream" if record.get("streamed")
                   else "the corpus was too small")
        quality = f"no held-out perplexity ({too_few} to hold any of it out)"
    lines = [*_front_matter(record["base_model"], ["language-adapter", "mad-x"], lang),
             f"# MAD-X language adapter: {lang}", "",
             f"A language adapter (with its invertible adapter on the embeddings) for `{record['base_model']}`, "
             f"trained by madx {__version__} with masked language modelling on {lang} text, the base model frozen.",
             "", "| | |", "|---|---|", f"| base model | `{record['base_model']}` |",
             f"| corpus | {', '.join(f'`{c}`' for c in record['corpus'])} |",
             f"| training blocks | {_blocks(record)} |",
             f"| steps x batch | {settings['max_steps']:,} x {settings['batch_size']} (lr {settings['lr']}) |",
             f"| share of the corpus read | {_share(record)} |", f"| result | {quality} |"]
    if record.get("romanized"):
        lines.append(f"| romanized | its corpus read through `{record['romanized']}` (madx_translit) |")
    if record.get("embeddings"):
        lines.append(f"| embeddings | its own input embeddings ({record['embeddings'].get('mode')}), in embeddings/ |")
    return "\n".join([*lines, "", *_loading(lang, with_head=False)])


def _blocks(record: dict) -> str:
    blocks, seq_len = record["blocks"], record["seq_len"]
    if not record.get("streamed"):
        return f"{blocks:,} blocks of {seq_len} tokens"
    if blocks is None:
        return f"streamed: {record['blocks_read']:,} blocks of {seq_len} tokens read, the stream not to its end"
    return f"streamed: {blocks:,} blocks of {seq_len} tokens in one pass"


def _share(record: dict) -> str:
    if record.get("corpus_share") is None:
        return "not known: the budget ended before the stream did"
    return f"{100 * record['corpus_share']:.1f}% ({record['epochs']:.2f} epochs)"


def task_card(record: dict, name: str) -> str:
    """The card of a task output (madx train-task's: an adapter and head, a fusion, or a fine-tuned model)."""
    settings = record.get("settings") or {}
    metric = next((key for key in record if key.startswith("best_dev_")), None)
    score = (f"{record[metric]:.4f} {metric.removeprefix('best_dev_')} on the dev set at step {record.get('best_step')}"
             if metric and record[metric] is not None else "no dev score recorded")
    under = f"over the language adapter `{record['lang_adapter']}`" if record.get("lang_adapter") else \
        "with no language adapter under it"
    if record.get("tlr_adapters"):
        under += f" and, in turn, {', '.join(f'`{d}`' for d in record['tlr_adapters'])} (target-ready, TLR)"
    kind = training(record["setup"])
    what = ("the whole base model fine-tuned (model/)" if kind.full_model else
            "an AdapterFusion of task adapters and a head" if kind.fusion else "a task adapter and its prediction head")
    lines = [*_front_matter(record["base_model"], ["task-adapter", record["task_type"]]),
             f"# {record['task']} ({record['task_type']}), madx setup {record['setup']}", "",
             f"{what[0].upper() + what[1:]} for `{record['base_model']}`, trained by madx {__version__} on labelled "
             f"source-language data {under}.", "", "| | |", "|---|---|",
             f"| base model | `{record['base_model']}` |", f"| training data | `{record.get('train')}` |",
             f"| dev data | `{record.get('dev')}` |", f"| labels | {', '.join(record['label_names']) or '(spans)'} |",
             f"| steps x batch | {settings.get('max_steps')} x {settings.get('batch_size')} (lr {settings.get('lr')}), "
             f"max length {record.get('max_length')} |", f"| result | {score} |"]
    if record.get("fuse"):
        lines.append(f"| fused | {', '.join(f'`{d}`' for d in record['fuse'])} ({record.get('fusion_config')}) |")
    if kind.full_model:
        loading = ["## How to load it", "", "The fine-tuned model is in model/ (transformers' save_pretrained); "
                   "load it with the matching `AutoModelFor...` class.", ""]
    elif kind.fusion:
        loading = ["## How to load it", "", "In madx: load each adapter under adapters/ (`madx.load_adapter`), then "
                   '`madx.load_fusion(model, "path/to/this/directory")`; in AdapterHub\'s `adapters`: the same '
                   "adapters, then `model.load_adapter_fusion(\"path/to/this/directory\", use_safetensors=True)`.",
                   ""]
    else:
        loading = _loading(name, with_head=True)
    return "\n".join([*lines, "", *loading])
