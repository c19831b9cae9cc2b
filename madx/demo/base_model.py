"""Build a small base encoder from scratch (the offline demo's, and the tests'): a sentencepiece
tokenizer trained on the given corpora and an XLM-R-style encoder pretrained with MLM."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict
from pathlib import Path

import torch

from ..core.files import files_under, record_checksums, replace_dir, staging_dir, write_text
from ..core.settings import PretrainSettings
from ..core.sources import Source
from ..data.corpus import load_blocks, read_lines
from ..data.coverage import coverage
from ..data.spm import sentencepiece_pieces, xlmr_tokenizer
from ..training.accelerator import make_accelerator
from ..training.loop import fit
from ..training.mlm import MaskedLMObjective, MLMBatches
from .data import TinyEncoder

log = logging.getLogger(__name__)


def train_tokenizer(corpora: list, out_dir: str | Path, vocab_size: int = 1000):
    """A sentencepiece unigram model on the corpora, as an XLM-R tokenizer (read with sentencepiece itself)."""
    lines = (line for corpus in corpora for line in read_lines(Source.parse(corpus)))
    tokenizer = xlmr_tokenizer(sentencepiece_pieces(lines, vocab_size))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def pretrained_scripts(tokenizer, sources: list[Source], min_share: float = 0.1) -> list[str]:
    """The scripts of the pretraining corpora: each that holds at least `min_share` of one corpus's letters."""
    return sorted({script for source in sources
                   for script, share in coverage(tokenizer, read_lines(source))["scripts"].items() if share >= min_share})


def build_base_model(
    corpora: list,
    tokenizer_corpora: list,
    output: str | Path,
    *,
    shape: TinyEncoder = TinyEncoder(),
    settings: PretrainSettings = PretrainSettings(),
) -> Path:
    """Tokenizer on `tokenizer_corpora`, encoder pretrained (all weights) with MLM on `corpora`; saved to output."""
    import transformers

    output = Path(output)
    staging, work_dir = staging_dir(output), output.with_name(output.name + ".work")
    tokenizer = train_tokenizer(tokenizer_corpora, staging, vocab_size=shape.vocab_size)
    config = transformers.XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=shape.hidden_size, num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads, intermediate_size=shape.intermediate_size,
        max_position_embeddings=shape.max_seq_len + 2, type_vocab_size=1, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
        hidden_dropout_prob=shape.dropout, attention_probs_dropout_prob=shape.dropout,
    )
    accelerator = make_accelerator(settings)
    sources = [Source.parse(c) for c in corpora]
    blocks = load_blocks(tokenizer, sources, shape.max_seq_len, staging / ".cache", line_by_line=shape.line_by_line)
    torch.manual_seed(settings.seed)
    model = transformers.XLMRobertaForMaskedLM(config)
    fit(MaskedLMObjective(model, padded=shape.line_by_line), MLMBatches(blocks, tokenizer, settings.batch_size, settings.seed),
        settings, work_dir, accelerator)
    if accelerator.is_main_process:
        shutil.rmtree(staging / ".cache", ignore_errors=True)
        model.save_pretrained(staging)
        shutil.copy(work_dir / "train_log.jsonl", staging / "pretrain_log.jsonl")
        write_text(staging / "madx_base.json", json.dumps(
            {"corpora": [str(s) for s in sources], "tokenizer_corpora": [str(c) for c in tokenizer_corpora],
             "shape": asdict(shape), "settings": asdict(settings),
             # the scripts it was pretrained on (each of at least a tenth of a corpus's letters, so a Japanese corpus
             # names its kanji as well as its kana): coverage recommends new-script setups for any other
             "scripts": pretrained_scripts(tokenizer, sources)},
            indent=2) + "\n")
        record_checksums(staging, files_under(staging))
        replace_dir(staging, output)
        shutil.rmtree(work_dir, ignore_errors=True)
    return output
