"""Train a language adapter (and its invertible adapter) with masked language modelling."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import torch

from . import hf
from .config import LANGUAGE_ADAPTER, AdapterConfig
from .corpus import load_blocks, read_lines
from .coverage import coverage, warn_if_badly_covered
from .files import staged_dir, write_text
from .io import write_adapter_files
from .mlm import MaskedLMObjective, MLMBatches, heldout_loss, split_heldout
from .model import activate, add_adapter, count_parameters, train_adapters
from .sources import Source
from .accelerator import cast_frozen, make_accelerator
from .settings import LangTraining
from .train import fit, settings_dict

log = logging.getLogger(__name__)


def train_language_adapter(
    base_model: str,
    lang: str,
    corpus: list,
    output: str | Path,
    *,
    adapter_config: AdapterConfig = LANGUAGE_ADAPTER,
    settings: LangTraining = LangTraining(),
    cache_dir: str | Path | None = None,
    trust_remote_code: bool = False,
) -> Path:
    output = Path(output)
    sources = [Source.parse(c, where=f"corpus of {lang}") for c in corpus]
    for source in sources:
        source.check_exists()
    config = hf.load_config(base_model, trust_remote_code=trust_remote_code)
    hf.check_sequence_length(config, settings.seq_len, base_model)
    accelerator = make_accelerator(settings)
    tokenizer = hf.load_tokenizer(base_model, trust_remote_code=trust_remote_code)
    cache_dir = Path(cache_dir) if cache_dir else output.parent / ".corpus-cache"
    with accelerator.main_process_first():  # the main process tokenizes; the others read its cache
        blocks = load_blocks(tokenizer, sources, settings.seq_len, cache_dir, max_tokens=settings.max_tokens,
                             line_by_line=settings.line_by_line, num_proc=settings.num_proc)
    blocks, heldout = split_heldout(blocks)
    log.info("%s: %d blocks of %d tokens (%s tokens), %d more held out", lang, len(blocks), settings.seq_len,
             f"{blocks.size:,}", len(heldout))
    stats = coverage(tokenizer, (line for source in sources for line in read_lines(source)))
    log.info("%s: %.2f%% unknown tokens, %.2f sub-words per word under the base tokenizer", lang,
             100 * stats["unk_rate"], stats["subwords_per_word"])
    stats["warning"] = warn_if_badly_covered(lang, stats)

    torch.manual_seed(settings.seed)
    model = hf.load_mlm_model(base_model, trust_remote_code=trust_remote_code)
    add_adapter(model, lang, adapter_config)
    activate(model, lang)
    train_adapters(model, lang)
    if accelerator.device.type == "cuda":
        cast_frozen(model, settings.mixed_precision)
    log.info("language adapter %s: %s", lang, count_parameters(model))

    work_dir = output.with_name(output.name + ".work")
    objective = MaskedLMObjective(model, padded=settings.line_by_line)
    fit(objective, MLMBatches(blocks, tokenizer, settings.batch_size, settings.seed), settings, work_dir, accelerator)
    heldout_stats = measure_heldout(objective, model, lang, heldout, tokenizer, settings, accelerator)
    if accelerator.is_main_process:
        with staged_dir(output) as staging:
            write_adapter_files(model, lang, staging, model_name=base_model)
            shutil.copy(work_dir / "train_log.jsonl", staging / "train_log.jsonl")
            write_text(staging / "training.json", json.dumps({
                "base_model": base_model, "lang": lang, "corpus": [str(s) for s in sources],
                "seq_len": settings.seq_len, "line_by_line": settings.line_by_line, "blocks": len(blocks),
                "coverage": stats, "heldout": heldout_stats, "settings": settings_dict(settings),
                "world_size": accelerator.num_processes,
            }, indent=2) + "\n")
        if not settings.keep_checkpoints:
            shutil.rmtree(work_dir, ignore_errors=True)
        log.info("saved language adapter %s -> %s", lang, output)
    accelerator.wait_for_everyone()
    return output


def measure_heldout(objective, model, lang: str, heldout, tokenizer, settings: LangTraining, accelerator) -> dict | None:
    """MLM loss and perplexity on the held-out blocks, with the trained adapter and with the bare base model:
    the diagnostic that says whether a language adapter learned anything. Main process only."""
    if not len(heldout) or not accelerator.is_main_process:
        return None
    measure = dict(tokenizer=tokenizer, batch_size=settings.batch_size, seed=settings.seed,
                   device=accelerator.device, autocast=accelerator.autocast)
    loss = heldout_loss(objective, heldout, **measure)
    activate(model)  # no adapter: the base model alone, on the same masked blocks
    base = heldout_loss(objective, heldout, **measure)
    activate(model, lang)
    stats = {"blocks": len(heldout), "loss": round(loss, 6), "perplexity": round(math.exp(loss), 4),
             "base_loss": round(base, 6), "base_perplexity": round(math.exp(base), 4)}
    log.info("%s: held-out MLM perplexity %.2f with the adapter, %.2f for the base model (%d blocks)", lang,
             stats["perplexity"], stats["base_perplexity"], len(heldout))
    return stats

