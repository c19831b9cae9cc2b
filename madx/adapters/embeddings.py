"""New input embeddings for a language the base model cannot read (the `madx_emb` setup; after Pfeiffer et al.,
EMNLP 2021, "UNKs Everywhere").

Two modes, both trained together with the language adapter by MLM, the rest of the base frozen:
- `new`: a sentencepiece tokenizer trained on the language's corpus, with a *lexical start*: with a romanizer
  (a script the base cannot read), a piece in that script starts from its romanized form's base row, or the
  mean of the base rows of the romanized form's base pieces; any other piece the base vocabulary has (the same
  string) starts from the base's row; the rest from the mean of the base rows of their base tokenization, or
  random when there is none (see `lexical_start`). The MLM output layer is tied to the new rows (and
  gets a new bias), so the invertible adapter's inverse and the loss work over the new vocabulary.
- `rows`: the base tokenizer kept; only the embedding rows of the pieces the language's corpus uses train.

On disk they follow AdapterHub's embeddings format (`model.save_embeddings(path, name, tokenizer)`):
`embedding.pt` (the input embedding matrix, torch.save) and `tokenizer/` (save_pretrained), in the directory
`embeddings/` inside the language adapter's, so `model.load_embeddings(<adapter>/embeddings, name)` loads them.
madx records their sha256 beside them (files.CHECKSUMS) and verifies them at load.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn

from ..core.errors import MadxError
from ..core.files import files_under, load_torch_file, record_checksums, verify_checksums

log = logging.getLogger(__name__)
EMBEDDINGS_DIR = "embeddings"  # inside a language adapter's directory
EMBEDDING_FILE = "embedding.pt"  # AdapterHub's names (adapters/utils.py: EMBEDDING_FILE, TOKENIZER_PATH)
TOKENIZER_DIR = "tokenizer"
INFO_FILE = "madx_embeddings.json"  # madx's own record beside them: mode, sizes, how the rows started
WORD_START = "\u2581"  # sentencepiece's word-start mark


class EmbeddingLoadError(MadxError, ValueError):
    pass


# ---- the lexical start


def base_rows_of(text: str, base_tokenizer, word_start: bool) -> list[int]:
    """The base tokenizer's pieces of `text` (as a word start, or inside a word), without a lone word-start mark."""
    ids = base_tokenizer(text, add_special_tokens=False)["input_ids"]
    if not word_start:  # the base tokenizes it as a word: drop the word-start mark it adds
        lone = base_tokenizer.convert_tokens_to_ids(WORD_START)
        ids = [i for i in ids if i != lone] or ids
    return [i for i in ids if i != base_tokenizer.unk_token_id]


def lexical_start(tokenizer, base_tokenizer, base_weight: torch.Tensor, romanize=None,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
    """(new embedding matrix (len(tokenizer), h), counts of how its rows started).

    With a romanizer, a piece it changes (a letter of the script the base cannot read) starts from its romanized
    form: the base's row of that piece when the base has it, else the mean of the base rows of its base
    tokenization; the base's own rows for the unreadable script were never trained, so they are not copied.
    Any other piece the base vocabulary has copies the base's row (`identical`); the rest start from the mean of
    the base rows of their base tokenization, else random (with the base rows' mean and standard deviation)."""
    base_vocab = base_tokenizer.get_vocab()
    mean, std = base_weight.float().mean(0), base_weight.float().std(0)
    weight = mean + std * torch.randn(len(tokenizer), base_weight.shape[1], generator=generator)
    counts = {"identical": 0, "romanized": 0, "subword_mean": 0, "random": 0}
    for piece, i in tokenizer.get_vocab().items():
        word_start = piece.startswith(WORD_START)
        body = piece[1:] if word_start else piece
        if romanize is not None and body and romanize.text(body) != body:
            kind, text = "romanized", romanize.text(body)
        elif piece in base_vocab:
            weight[i] = base_weight[base_vocab[piece]].float()
            counts["identical"] += 1
            continue
        else:
            kind, text = "subword_mean", body
        whole = WORD_START + text if word_start else text
        if whole in base_vocab:
            weight[i] = base_weight[base_vocab[whole]].float()
            counts[kind] += 1
            continue
        rows = base_rows_of(text, base_tokenizer, word_start) if text.strip() else []
        if rows:
            weight[i] = base_weight[rows].float().mean(0)
            counts[kind] += 1
        else:
            counts["random"] += 1
    return weight.to(base_weight.dtype), counts


# ---- the model's embeddings


def use_new_vocabulary(model: nn.Module, weight: torch.Tensor) -> None:
    """Give an MLM model a new vocabulary: input embeddings = `weight`, the output layer tied to them, its bias
    zero (resize_token_embeddings does the resizing for every supported model, then the rows are set)."""
    model.resize_token_embeddings(weight.shape[0], mean_resizing=False)
    embeddings = model.get_input_embeddings()
    with torch.no_grad():
        embeddings.weight.copy_(weight.to(embeddings.weight.dtype))
        output = model.get_output_embeddings()
        if output is not None:
            if output.weight is not embeddings.weight:  # an untied head: tie it, the new rows serve both
                output.weight = embeddings.weight
            for bias in output_biases(model):
                bias.zero_()
    model.config.vocab_size = weight.shape[0]


def output_biases(model: nn.Module) -> list[nn.Parameter]:
    """The MLM output layer's bias over the vocabulary (one parameter, whichever module holds it)."""
    output = model.get_output_embeddings()
    seen, biases = set(), []
    for owner in (output, getattr(model, "lm_head", None), getattr(getattr(model, "cls", None), "predictions", None)):
        bias = getattr(owner, "bias", None) if owner is not None else None
        if isinstance(bias, nn.Parameter) and id(bias) not in seen and bias.shape[0] == output.weight.shape[0]:
            seen.add(id(bias))
            biases.append(bias)
    return biases


def train_rows(model: nn.Module, rows: torch.Tensor | None) -> list[nn.Parameter]:
    """Make the input embeddings trainable: all rows (rows=None), or only `rows` (a gradient mask zeroes every
    other row's gradient; give this parameter no weight decay, so untouched rows stay exactly as they were).
    Returns the parameters to put in the embeddings' optimizer group."""
    weight = model.get_input_embeddings().weight
    weight.requires_grad_(True)
    params = [weight]
    if rows is not None:
        mask = torch.zeros(weight.shape[0], 1, dtype=weight.dtype, device=weight.device)
        mask[rows] = 1
        weight.register_hook(lambda grad: grad * mask.to(grad.dtype))
    else:
        for bias in output_biases(model):
            bias.requires_grad_(True)
            params.append(bias)
    return params


def swap_input_embeddings(model: nn.Module, weight: torch.Tensor) -> nn.Module:
    """Put `weight` in as the model's input embeddings (inference); returns the module it replaced."""
    old = model.get_input_embeddings()
    new = nn.Embedding.from_pretrained(weight.to(device=old.weight.device, dtype=old.weight.dtype), freeze=True,
                                       padding_idx=old.padding_idx)
    model.set_input_embeddings(new)
    return old


# ---- on disk


def save_embeddings(directory: str | Path, weight: torch.Tensor, tokenizer, info: dict) -> Path:
    """AdapterHub's embeddings directory: embedding.pt + tokenizer/, madx's record (INFO_FILE) and the sha256 of the
    matrix and the tokenizer's files (files.CHECKSUMS)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(weight.detach().float().cpu().clone(), directory / EMBEDDING_FILE)
    tokenizer.save_pretrained(directory / TOKENIZER_DIR)
    (directory / INFO_FILE).write_text(json.dumps({"rows": weight.shape[0], "dim": weight.shape[1], **info},
                                                  indent=2) + "\n")
    record_checksums(directory, [directory / EMBEDDING_FILE, *files_under(directory / TOKENIZER_DIR)])
    return directory


def embeddings_dir(adapter_dir: str | Path) -> Path | None:
    """The embeddings saved beside a language adapter, or None."""
    path = Path(adapter_dir) / EMBEDDINGS_DIR
    return path if (path / EMBEDDING_FILE).is_file() else None


def verify_embeddings(directory: Path) -> None:
    """The matrix and every tokenizer file the record lists (one gone is an error too, never a tokenizer loaded
    without it) against their sha256. The remedy names the language adapter around them: Snakemake's output is that
    directory, so deleting only `embeddings/` would leave it "done" and rebuild nothing."""
    remedy = (f"retrain the language adapter: delete {directory.parent} (the adapter these embeddings belong to) and "
              "rerun snakemake (or madx train-lang)")
    verify_checksums(directory, [directory / EMBEDDING_FILE], error=EmbeddingLoadError, remedy=remedy)
    verify_checksums(directory, under=TOKENIZER_DIR, error=EmbeddingLoadError, remedy=remedy)


def load_embeddings(directory: str | Path, hidden_size: int | None = None) -> tuple[torch.Tensor, object]:
    """(embedding matrix, tokenizer) of an AdapterHub embeddings directory; a tokenizer that does not match the
    matrix (or a matrix of another hidden size) is an error, never a partial load."""
    import transformers

    directory = Path(directory)
    file = directory / EMBEDDING_FILE
    if not file.is_file():
        raise EmbeddingLoadError(f"{directory}: no {EMBEDDING_FILE}; an embeddings directory (AdapterHub's "
                                 f"save_embeddings) has {EMBEDDING_FILE} and {TOKENIZER_DIR}/")
    if not (directory / TOKENIZER_DIR).is_dir():
        raise EmbeddingLoadError(f"{directory}: no {TOKENIZER_DIR}/ beside {EMBEDDING_FILE}: the embeddings' rows "
                                 "mean nothing without the tokenizer they were made for; save them with it")
    verify_embeddings(directory)
    weight = load_torch_file(file, error=EmbeddingLoadError)
    weight = weight.detach() if isinstance(weight, torch.Tensor) else weight
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise EmbeddingLoadError(f"{file}: not an embedding matrix (a 2-d tensor)")
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory / TOKENIZER_DIR)
    if len(tokenizer) != weight.shape[0]:
        raise EmbeddingLoadError(f"{directory}: the tokenizer has {len(tokenizer)} pieces but {EMBEDDING_FILE} has "
                                 f"{weight.shape[0]} rows: they were not saved together; use the tokenizer the "
                                 "embeddings were trained with")
    if hidden_size is not None and weight.shape[1] != hidden_size:
        raise EmbeddingLoadError(f"{file}: rows of {weight.shape[1]} values, the base model's hidden size is "
                                 f"{hidden_size}; use embeddings trained on this base model")
    return weight, tokenizer
