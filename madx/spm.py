"""Sentencepiece tokenizers in XLM-R's layout: the demo's base tokenizer (madx/base.py) and a language's own
tokenizer for new embeddings (madx/embeddings.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

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
