"""Train a language adapter (and its invertible adapter) with masked language modelling."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import torch

from ..adapters.config import LANGUAGE_ADAPTER, AdapterConfig
from ..adapters.embeddings import EMBEDDINGS_DIR, lexical_start, save_embeddings, train_rows, use_new_vocabulary
from ..adapters.io import write_adapter_files
from ..adapters.counting import count_parameters
from ..adapters.model import activate, add_adapter, train_adapters
from ..core.files import LANG_RECORD, staged_dir, write_text
from ..core.settings import EMBEDDING_ROWS, NEW_EMBEDDINGS, LangTraining
from ..core.sources import DataError, Source
from ..data import hub
from ..data.corpus import corpus_lines, iter_blocks, load_blocks, read_lines
from ..data.coverage import NEW_SCRIPT_HINT, base_scripts, coverage, new_script_reasons, warn_if_badly_covered
from ..data.romanize import romanizer
from .accelerator import cast_frozen, make_accelerator
from .cards import CARD, language_card
from .loop import fit, settings_dict
from .mlm import HELDOUT_MIN_BLOCKS, HELDOUT_SHARE, MaskedLMObjective, MLMBatches, heldout_loss, split_heldout
from .streaming import SHUFFLE_BUFFER, StreamedCorpus, StreamedMLMBatches, planned_heldout

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
    """Train `lang`'s adapter (with new or trained embedding rows when settings.embeddings asks) on its corpus
    and write it, in AdapterHub's format with training.json beside it, to `output`."""
    output = Path(output)
    sources = [Source.parse(c, where=f"corpus of {lang}") for c in corpus]
    for source in sources:
        source.check_exists()
    if settings.embeddings and any(source.streaming for source in sources):
        raise DataError(f"corpus of {lang}: a streamed corpus cannot train embeddings ({settings.embeddings}: they "
                        "need the whole corpus first); give a local file or a hub dataset without streaming")
    config = hub.load_config(base_model, trust_remote_code=trust_remote_code)
    hub.check_sequence_length(config, settings.seq_len, base_model)
    accelerator = make_accelerator(settings)
    base_tokenizer = hub.load_tokenizer(base_model, trust_remote_code=trust_remote_code)
    roman = romanizer(settings.romanize, lang) if settings.romanize else None
    if settings.match_romanized:  # named before any work, used when the new embeddings start
        romanizer(settings.match_romanized, lang)
    work_dir = output.with_name(output.name + ".work")
    tokenizer = base_tokenizer
    if settings.embeddings == NEW_EMBEDDINGS:
        with accelerator.main_process_first():  # trained once (deterministic), kept for a resumed run
            tokenizer = language_tokenizer(sources, lang, settings.vocab_size, base_tokenizer, work_dir / "tokenizer")
    cache_dir = Path(cache_dir) if cache_dir else output.parent / ".corpus-cache"
    streamed = any(source.streaming for source in sources)
    if streamed:  # no blocks in memory (a streamed corpus trains no embeddings: refused above)
        blocks, (batches, heldout) = None, streamed_corpus(lang, sources, tokenizer, roman, settings)
    else:
        blocks, heldout, budget, corpus_warning = training_corpus(lang, sources, tokenizer, roman, settings,
                                                                  cache_dir, accelerator)
        batches = MLMBatches(blocks, tokenizer, settings.batch_size, settings.seed)
        corpus_facts = {"blocks": len(blocks), **budget, "corpus_warning": corpus_warning}
    stats = base_coverage(base_model, base_tokenizer, lang, sources, roman, settings)

    torch.manual_seed(settings.seed)
    model, embedding_info, groups = adapter_model(base_model, lang, adapter_config, settings, tokenizer,
                                                  base_tokenizer, blocks, trust_remote_code)
    if accelerator.device.type == "cuda":
        cast_frozen(model, settings.mixed_precision)
    log.info("language adapter %s: %s", lang, count_parameters(model))

    objective = MaskedLMObjective(model, padded=settings.line_by_line)
    fit(objective, batches, settings, work_dir, accelerator, groups=groups)
    if streamed:  # a stream's length is known once a pass over it has ended
        corpus_facts = batches.corpus.record(settings.max_steps * settings.batch_size)
    heldout_stats = measure_heldout(objective, model, lang, heldout, tokenizer, settings, accelerator,
                                    base_comparable=not settings.embeddings)
    if accelerator.is_main_process:
        record = {"base_model": base_model, "lang": lang, "corpus": [str(s) for s in sources],
                  "seq_len": settings.seq_len, "line_by_line": settings.line_by_line, **corpus_facts, "coverage": stats,
                  "heldout": heldout_stats,
                  "settings": settings_dict(settings), "romanized": roman.identity if roman else None,
                  "embeddings": embedding_info, "world_size": accelerator.num_processes}
        write_language_adapter(model, lang, tokenizer, record, work_dir, output)
        if not settings.keep_checkpoints:
            shutil.rmtree(work_dir, ignore_errors=True)
        log.info("saved language adapter %s -> %s", lang, output)
    accelerator.wait_for_everyone()
    return output


def training_corpus(lang: str, sources: list, tokenizer, roman, settings: LangTraining, cache_dir: Path, accelerator):
    """The corpus as fixed blocks for training and the held-out ones apart, the share of them the step budget
    covers, and the small-corpus warning (None for a corpus of useful size), each logged once."""
    with accelerator.main_process_first():  # the main process tokenizes; the others read its cache
        blocks = load_blocks(tokenizer, sources, settings.seq_len, cache_dir, max_tokens=settings.max_tokens,
                             line_by_line=settings.line_by_line, num_proc=settings.num_proc, romanize=roman)
    corpus_warning = small_corpus_warning(lang, blocks, settings)
    if corpus_warning and accelerator.is_main_process:
        log.warning(corpus_warning)
    blocks, heldout = split_heldout(blocks)
    budget = corpus_budget(len(blocks), settings)
    log.info("%s: %d blocks of %d tokens (%s tokens), %d more held out%s; %s", lang, len(blocks), settings.seq_len,
             f"{blocks.size:,}", len(heldout), f"; romanized with {roman.identity}" if roman else "",
             budget_text(budget, settings))
    return blocks, heldout, budget, corpus_warning


def streamed_corpus(lang: str, sources: list, tokenizer, roman, settings: LangTraining
                    ) -> tuple[StreamedMLMBatches, np.ndarray]:
    """(batches, held-out blocks) of a corpus read as a stream: each process reads it (the batches are a function
    of the step), nothing is cached, the first blocks are held out, and the shuffle buffer holds no more blocks
    than the step budget reads."""
    name = ", ".join(map(str, sources))
    planned = settings.max_steps * settings.batch_size
    corpus = StreamedCorpus(lambda: iter_blocks(tokenizer, sources, settings.seq_len, settings.max_tokens,
                                                settings.line_by_line, roman),
                            planned_heldout(settings), settings.seq_len, settings.seed, name,
                            buffer=min(SHUFFLE_BUFFER, planned))
    log.info("%s: streaming %s in blocks of %d tokens, the first %d held out; %d steps x %d blocks%s", lang, name,
             settings.seq_len, len(corpus.heldout), settings.max_steps, settings.batch_size,
             f"; romanized with {roman.identity}" if roman else "")
    return StreamedMLMBatches(corpus, tokenizer, settings.batch_size, settings.seed), corpus.heldout


def base_coverage(base_model: str, base_tokenizer, lang: str, sources: list, roman, settings: LangTraining) -> dict:
    """How the base tokenizer covers the corpus (logged; a new-script setup recommended when the numbers say the
    base model cannot read it and the adapter is not one already)."""
    stats = coverage(base_tokenizer, (line for source in sources for line in corpus_lines(source, roman)))
    log.info("%s: %.2f%% unknown tokens, %.2f sub-words per %s under the base tokenizer; script %s", lang,
             100 * stats["unk_rate"], stats["subwords_per_word"], stats["unit"], stats["script"])
    stats["warning"] = warn_if_badly_covered(lang, stats)
    stats["base_scripts"] = base_scripts(base_model)
    reasons = new_script_reasons(stats, base_scripts=stats["base_scripts"])
    if reasons and not (settings.romanize or settings.embeddings):
        log.warning("%s: %s: the base model cannot read it; a new-script setup is recommended: %s", lang,
                    "; ".join(reasons), NEW_SCRIPT_HINT)
    return stats


def adapter_model(base_model: str, lang: str, adapter_config: AdapterConfig, settings: LangTraining, tokenizer,
                  base_tokenizer, blocks, trust_remote_code: bool) -> tuple[torch.nn.Module, dict | None, list | None]:
    """The MLM model with the language adapter active and training: (model, what its embeddings are, the
    optimizer group of the embedding rows that train, or None). New embeddings start from the base's lexically."""
    model = hub.load_mlm_model(base_model, trust_remote_code=trust_remote_code)
    embedding_info = None
    if settings.embeddings == NEW_EMBEDDINGS:
        match = romanizer(settings.match_romanized, lang) if settings.match_romanized else None
        weight, started = lexical_start(tokenizer, base_tokenizer, model.get_input_embeddings().weight.detach(), match)
        use_new_vocabulary(model, weight)
        embedding_info = {"mode": NEW_EMBEDDINGS, "vocab_size": len(tokenizer), "started_from": started,
                          "match_romanized": match.identity if match else None}
        log.info("%s: a tokenizer of %d pieces trained on the corpus; their embeddings start from the base's: %s",
                 lang, len(tokenizer), ", ".join(f"{n} {kind}" for kind, n in started.items()))
    add_adapter(model, lang, adapter_config)
    activate(model, lang)
    train_adapters(model, lang)
    groups = None
    if settings.embeddings:
        rows = None if settings.embeddings == NEW_EMBEDDINGS else used_rows(blocks, tokenizer)
        # no weight decay: a row the language never uses must stay exactly the base's
        groups = [{"params": train_rows(model, rows), "lr": settings.embedding_lr or settings.lr, "weight_decay": 0.0}]
        if rows is not None:
            embedding_info = {"mode": EMBEDDING_ROWS, "vocab_size": len(tokenizer), "rows_trained": len(rows)}
            log.info("%s: training the %d embedding rows its corpus uses (of %d)", lang, len(rows), len(tokenizer))
    return model, embedding_info, groups


def write_language_adapter(model, lang: str, tokenizer, record: dict, work_dir: Path, output: Path) -> None:
    """The adapter (and its embeddings), its train log and training.json, staged then renamed into place."""
    with staged_dir(output) as staging:
        write_adapter_files(model, lang, staging, model_name=record["base_model"])
        if record["embeddings"] is not None:
            save_embeddings(staging / EMBEDDINGS_DIR, model.get_input_embeddings().weight, tokenizer,
                            {**record["embeddings"], "lang": lang, "base_model": record["base_model"]})
        shutil.copy(work_dir / "train_log.jsonl", staging / "train_log.jsonl")
        write_text(staging / LANG_RECORD, json.dumps(record, indent=2) + "\n")
        write_text(staging / CARD, language_card(record))


def corpus_budget(n_blocks: int, settings: LangTraining) -> dict:
    """How much of its training blocks the budget reads: epochs = steps x batch size / blocks, and the share of
    the blocks seen (each epoch is a shuffle of all of them: madx.training.batching), at most 1."""
    epochs = settings.max_steps * settings.batch_size / n_blocks
    return {"corpus_share": round(min(epochs, 1.0), 6), "epochs": round(epochs, 4)}


def budget_text(budget: dict, settings: LangTraining) -> str:
    steps = f"{settings.max_steps} steps x {settings.batch_size} blocks"
    if budget["epochs"] <= 1:
        percent = 100 * budget["corpus_share"]
        return f"{steps} read {percent:.1f}% of them" if percent >= 0.1 else f"{steps} read {percent:.2g}% of them"
    return f"{steps} read all of them, {budget['epochs']:,.1f} epochs"


def small_corpus_warning(lang: str, blocks, settings: LangTraining) -> str | None:
    """The warning for the job log and training.json when the corpus is too small to hold any of it out: the
    adapter then trains with no held-out perplexity to say whether it learned anything."""
    if len(blocks) >= HELDOUT_MIN_BLOCKS:
        return None
    if settings.line_by_line:
        have, need = f"{len(blocks)} lines (one block each)", f"{HELDOUT_MIN_BLOCKS} lines"
    else:
        have = f"{len(blocks)} blocks of {settings.seq_len} tokens ({blocks.size:,} tokens)"
        need = f"{HELDOUT_MIN_BLOCKS} blocks, {HELDOUT_MIN_BLOCKS * settings.seq_len:,} tokens at this seq_len"
    return (f"{lang}: the corpus makes only {have}, too few to hold any out: no held-out perplexity will say "
            f"whether the language adapter learned anything (the held-out split is the last "
            f"{100 * HELDOUT_SHARE:.0f}% of the blocks and needs at least {need}); add text to the corpus, or "
            "accept no held-out measure")


def measure_heldout(objective, model, lang: str, heldout, tokenizer, settings: LangTraining, accelerator,
                    base_comparable: bool = True) -> dict | None:
    """MLM loss and perplexity on the held-out blocks, with the trained adapter and with the bare base model:
    the diagnostic that says whether a language adapter learned anything. Main process only. With trained
    embeddings (base_comparable False) there is no base model left to compare with: its pieces are other ones
    (a new vocabulary), or its rows changed (the rows mode)."""
    if not len(heldout) or not accelerator.is_main_process:
        return None
    measure = dict(tokenizer=tokenizer, batch_size=settings.batch_size, seed=settings.seed,
                   device=accelerator.device, autocast=accelerator.autocast)
    loss = heldout_loss(objective, heldout, **measure)
    if not base_comparable:
        stats = {"blocks": len(heldout), "loss": round(loss, 6), "perplexity": round(math.exp(loss), 4),
                 "base_loss": None, "base_perplexity": None}
        log.info("%s: held-out MLM perplexity %.2f with the adapter and its trained embeddings (%d blocks; no "
                 "base model left to compare with)", lang, stats["perplexity"], len(heldout))
        return stats
    activate(model)  # no adapter: the base model alone, on the same masked blocks
    base = heldout_loss(objective, heldout, **measure)
    activate(model, lang)
    stats = {"blocks": len(heldout), "loss": round(loss, 6), "perplexity": round(math.exp(loss), 4),
             "base_loss": round(base, 6), "base_perplexity": round(math.exp(base), 4)}
    log.info("%s: held-out MLM perplexity %.2f with the adapter, %.2f for the base model (%d blocks)", lang,
             stats["perplexity"], stats["base_perplexity"], len(heldout))
    return stats


def language_tokenizer(sources: list[Source], lang: str, vocab_size: int, base_tokenizer, keep: Path):
    """The language's own tokenizer (embeddings new): trained on its corpus, or the one a resumed run made."""
    import transformers

    from ..data.spm import train_language_tokenizer

    if (keep / "tokenizer_config.json").is_file():
        return transformers.AutoTokenizer.from_pretrained(keep)
    lines = [line for source in sources for line in read_lines(source)]
    tokenizer = train_language_tokenizer(lines, lang, vocab_size, base_tokenizer)
    tokenizer.save_pretrained(keep)
    return tokenizer


def used_rows(blocks, tokenizer) -> torch.Tensor:
    """The vocabulary rows the corpus blocks use (embeddings rows): every piece in them but padding."""
    ids = np.unique(blocks)
    return torch.from_numpy(ids[ids != tokenizer.pad_token_id].astype(np.int64))
