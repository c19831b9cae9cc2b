"""Sentencepiece tokenizers in XLM-R's layout: the demo's base tokenizer (madx/demo/base_model.py) and a language's own
tokenizer for new embeddings (the `madx_emb` setup: madx/adapters/embeddings.py)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from ..core.sources import DataError

SPECIAL_PIECES = ["<s>", "<pad>", "</s>", "<unk>"]  # XLM-R's first ids: cls=0, pad=1, sep=2, unk=3


def sentencepiece_pieces(lines, vocab_size: int, *, hard_limit: bool = False) -> list[tuple[str, float]]:
    """(piece, score) of a sentencepiece unigram model trained on `lines` (unk first). hard_limit: exactly
    vocab_size pieces or sentencepiece's error (which says the most the text allows), else at most vocab_size."""
    import sentencepiece as spm

    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "all.txt"
        with open(text, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")
        spm.SentencePieceTrainer.train(
            input=str(text), model_prefix=str(Path(tmp) / "spm"), vocab_size=vocab_size, model_type="unigram",
            character_coverage=1.0, hard_vocab_limit=hard_limit, num_threads=1,
            bos_id=-1, eos_id=-1, pad_id=-1, unk_id=0, minloglevel=2,
        )
        processor = spm.SentencePieceProcessor(model_file=str(Path(tmp) / "spm.model"))
        return [(processor.id_to_piece(i), processor.get_score(i)) for i in range(processor.get_piece_size())]


def xlmr_tokenizer(pieces: list[tuple[str, float]], specials: dict | None = None):
    """An XLM-R tokenizer over sentencepiece pieces: cls, pad, sep, unk first, then the pieces, mask last.
    transformers 5 turns a sentencepiece model into a tokenizer only with protobuf, or from the piece list.
    `specials` renames the special tokens (cls_token, pad_token, sep_token, unk_token, mask_token)."""
    import transformers

    names = {"cls_token": "<s>", "pad_token": "<pad>", "sep_token": "</s>", "unk_token": "<unk>", "mask_token": "<mask>",
             **(specials or {})}
    first = [names["cls_token"], names["pad_token"], names["sep_token"], names["unk_token"]]
    vocab = [(p, 0.0) for p in first] + [(p, s) for p, s in pieces if p not in first and p not in SPECIAL_PIECES
                                         and p != names["mask_token"]]
    vocab.append((names["mask_token"], 0.0))
    return transformers.XLMRobertaTokenizer(vocab=vocab, bos_token=names["cls_token"], eos_token=names["sep_token"],
                                            **names)


def special_tokens(tokenizer) -> dict:
    """The base tokenizer's special tokens by role (the new tokenizer keeps their strings, so their rows copy)."""
    return {role: getattr(tokenizer, role) for role in ("cls_token", "pad_token", "sep_token", "unk_token", "mask_token")
            if getattr(tokenizer, role, None) is not None}


def train_language_tokenizer(lines: list[str], lang: str, vocab_size: int, base_tokenizer):
    """A sentencepiece unigram tokenizer of `vocab_size` pieces on the language's lines (XLM-R layout, the base's
    special tokens). A corpus too small for that many pieces is an error that says the most it allows."""
    if not lines:
        raise DataError(f"{lang}: no corpus text to train a tokenizer on")
    specials = special_tokens(base_tokenizer)
    extra = len(set(specials.values()))  # added around sentencepiece's own pieces (it makes unk itself)
    asked = vocab_size - extra + 1
    try:
        pieces = sentencepiece_pieces(lines, asked, hard_limit=True)
    except RuntimeError as err:
        most = re.search(r"<=\s*(\d+)", str(err))
        words = sum(len(line.split()) for line in lines)
        types = len({w for line in lines for w in line.split()})
        allows = f"; it allows at most {int(most.group(1)) + extra - 1}" if most else ""
        raise DataError(f"{lang}: corpus too small for a tokenizer of {vocab_size} pieces: {len(lines)} lines, "
                        f"{words} words, {types} distinct words{allows}; lower embeddings.vocab_size or add text") from None
    return xlmr_tokenizer(pieces, specials)
