"""Loading base models and tokenizers from a hub id or a local path, with checks before any work.

transformers is imported where a model or tokenizer is loaded: the config check (check_base_model_dir,
looks_like_a_path) runs before every DAG and must stay quick."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..core.errors import MadxError
from ..core.files import verify_checksums
from ..core.sources import looks_like_a_path

log = logging.getLogger(__name__)

# The files a tokenizer is built from (fast tokenizer.json; sentencepiece, WordPiece and BPE vocabularies). A model
# directory with none of them still loads in transformers 5, as an empty 5-token tokenizer: every word <unk>.
TOKENIZER_FILES = ("tokenizer.json", "sentencepiece.bpe.model", "spiece.model", "spm.model", "tokenizer.model",
                   "vocab.txt", "vocab.json")
# what else a tokenizer is built from, and the weights a model loads from: checked against a base model's checksums
TOKENIZER_EXTRA_FILES = ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "merges.txt")
WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")
# A tokenizer with fewer entries than this share of the model's embedding rows is not the model's own (models pad
# their rows to a round number, mDeBERTa by 0.4%; an empty or wrong tokenizer leaves most rows unused)
MIN_VOCAB_SHARE = 0.5


class ModelLoadError(MadxError, ValueError):
    pass


def read_model_config(directory: str | Path) -> dict:
    """A model directory's config.json, read as JSON; a file that is not a JSON object is an error naming it."""
    path = Path(directory) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{path}: cannot be read as JSON ({err}); save the model again "
                             "(model.save_pretrained(DIR)) or download it again") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{path}: a JSON {type(config).__name__}, not the object save_pretrained writes; save "
                             "the model again (model.save_pretrained(DIR)) or download it again")
    return config


def tokenizer_size(directory: Path, name: str) -> int:
    """Entries of the tokenizer file `name` (one of TOKENIZER_FILES) in `directory`, read without transformers:
    tokenizer.json with its added tokens, a sentencepiece model's pieces, vocab.txt's distinct lines (WordPiece),
    vocab.json's keys (BPE). A sentencepiece or WordPiece tokenizer may add a few special tokens to these."""
    path = directory / name
    if name == "tokenizer.json":
        from tokenizers import Tokenizer  # Rust, no torch: quick

        return Tokenizer.from_file(str(path)).get_vocab_size(with_added_tokens=True)
    if name == "vocab.txt":  # transformers numbers its lines, a repeated line keeping one entry
        text = path.read_text(encoding="utf-8")
        return len(set(text.removesuffix("\n").split("\n"))) if text else 0
    if name == "vocab.json":
        vocab = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(vocab, dict):
            raise ValueError(f"a JSON {type(vocab).__name__}, not a token -> id object")
        return len(vocab)
    import sentencepiece  # a C++ extension, no torch: quick

    return sentencepiece.SentencePieceProcessor(model_file=str(path)).get_piece_size()


def check_base_model_dir(base_model: str) -> None:
    """A local base model directory has config.json, tokenizer files, and a tokenizer that fits the model's embedding
    rows (the size of the file transformers would build it from). Reads files only (no transformers): the config
    check runs it."""
    directory = Path(base_model)
    if not directory.is_dir():
        what = "is a file, not a model directory" if directory.exists() else "no such local directory"
        raise ModelLoadError(f"base_model {base_model!r}: {what}; give a model directory (config.json, weights "
                             "and tokenizer files) or a hub id such as FacebookAI/xlm-roberta-base")
    if not (directory / "config.json").is_file():
        raise ModelLoadError(f"base_model {base_model!r}: no config.json there; give the directory save_pretrained "
                             "wrote (config.json, weights and tokenizer files)")
    found = [name for name in TOKENIZER_FILES if (directory / name).is_file()]
    if not found:
        raise ModelLoadError(f"base_model {base_model!r}: no tokenizer files there (none of "
                             f"{', '.join(TOKENIZER_FILES)}); save the model's tokenizer beside it "
                             "(tokenizer.save_pretrained(DIR))")
    try:  # the file transformers builds the tokenizer from: tokenizer.json first, then the slow tokenizers' files
        size = tokenizer_size(directory, found[0])
    except Exception as err:  # tokenizers and sentencepiece raise their own Exception types for a malformed file
        raise ModelLoadError(f"base_model {base_model!r}: {found[0]} cannot be read ({err}); save the model's "
                             "tokenizer again (tokenizer.save_pretrained(DIR))") from None
    check_tokenizer_fits(size, read_model_config(directory).get("vocab_size"), base_model, f"its {found[0]}")


def hub_offline() -> bool:
    """HF_HUB_OFFLINE set to a true value: the hub client reads its cache only."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def check_hub_model(base_model: str) -> str | None:
    """A base model given as a hub id (not a local directory here) that the jobs can load: in the hub cache, or
    found on the hub. None when it is cached; a warning when the first job will download it, or when the hub cannot
    be reached to say; a ModelLoadError when it is not cached offline, or the hub has no such model (a typo would
    otherwise change every job's settings and fail only inside them)."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    here = f"no local directory {base_model!r} under {os.getcwd()}"
    if isinstance(try_to_load_from_cache(base_model, "config.json"), str):
        return None
    if hub_offline():
        raise ModelLoadError(f"base_model {base_model!r}: {here}, so it is read as a hub id, and it is not in the hub "
                             f"cache (HF_HUB_OFFLINE is set); download it while online (hf download {base_model}), "
                             "or fix the path of the local directory")
    from huggingface_hub import HfApi

    try:
        HfApi().model_info(base_model, timeout=10)
    except GatedRepoError:
        return (f"base_model {base_model!r}: a gated hub model, not in the hub cache: the jobs download it with your "
                "token (HF_TOKEN, or hf auth login)")
    except RepositoryNotFoundError:
        raise ModelLoadError(f"base_model {base_model!r}: {here}, and the hub has no model of that id (or it is "
                             "private: log in with hf auth login or set HF_TOKEN); fix the path or the id") from None
    except Exception as err:  # noqa: BLE001 - no network, a proxy, a hub outage: the jobs try again
        return (f"base_model {base_model!r}: {here}, so it is read as a hub id; it is not in the hub cache and the "
                f"hub cannot be reached to check it ({type(err).__name__}): the first job downloads it. If you meant a "
                "local directory, fix the path")
    return f"base_model {base_model!r}: a hub id not in the hub cache yet: the first job downloads it"


def check_tokenizer_fits(size: int, rows: int | None, base_model: str, what: str = "its tokenizer") -> None:
    """A tokenizer of `size` entries (`what`: the tokenizer or the file it is read from) indexes an embedding table
    of `rows`: every id must have a row, and most rows an id (a much smaller tokenizer is not the model's own, e.g.
    the empty one transformers builds without files)."""
    if rows is None:
        return
    if size > rows:
        raise ModelLoadError(f"base_model {base_model!r}: {what} has {size} entries, the model's embeddings "
                             f"{rows} rows (config.json vocab_size): ids from {rows} on have no row; use the "
                             "tokenizer the model was trained with")
    if size < MIN_VOCAB_SHARE * rows:
        raise ModelLoadError(f"base_model {base_model!r}: {what} has {size} entries for the model's {rows} "
                             "embedding rows (config.json vocab_size): not the model's own (transformers builds an "
                             f"empty one from files it cannot read; it reads {', '.join(TOKENIZER_FILES)}); save the "
                             "model's tokenizer beside it (tokenizer.save_pretrained(DIR))")


def load_config(base_model: str, *, trust_remote_code: bool = False):
    import transformers

    from ..adapters.model import SUPPORTED_MODEL_TYPES, UnsupportedModelError

    if looks_like_a_path(base_model) and not Path(base_model).exists():
        raise ModelLoadError(f"base_model {base_model!r}: no such local directory; give a model directory "
                             "(config.json and weights) or a hub id such as xlm-roberta-base")
    try:
        config = transformers.AutoConfig.from_pretrained(base_model, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        hint = "a local directory with config.json" if Path(base_model).exists() else "a hub id or a local path"
        raise ModelLoadError(f"base_model {base_model!r}: cannot load its config ({err}); give {hint}") from None
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise UnsupportedModelError(
            f"base_model {base_model!r} is a {config.model_type!r} model; madx supports {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    return config


def max_sequence_length(config) -> int:
    """Longest input the position embeddings allow (RoBERTa-style models offset positions by pad_token_id + 1)."""
    limit = config.max_position_embeddings
    if config.model_type in ("roberta", "xlm-roberta"):
        limit -= (config.pad_token_id or 0) + 1
    return limit


def check_sequence_length(config, seq_len: int, base_model: str, key: str = "seq_len") -> None:
    limit = max_sequence_length(config)
    if seq_len > limit:
        raise ModelLoadError(
            f"{key}={seq_len} is beyond base_model {base_model!r}'s position limit of {limit} tokens; "
            f"set {key} to at most {limit}"
        )


def verify_base_model(base_model: str) -> None:
    """A local base model directory madx built (madx build-base) holds the weights and tokenizer files it wrote, as
    its checksum sidecar lists them. config.json is left out: editing it by hand (dropout, say) is a way to use a
    base model, and a config that does not fit the weights fails to load. A directory without a sidecar (any Hugging
    Face model) is not checked."""
    directory = Path(base_model)
    if not directory.is_dir():
        return
    files = {directory / name for name in (*WEIGHTS_FILES, *TOKENIZER_FILES, *TOKENIZER_EXTRA_FILES)}
    verify_checksums(directory, sorted(files | set(directory.glob("*.safetensors"))), error=ModelLoadError,
                     remedy=f"rebuild the base model: delete {base_model} and rerun snakemake (or madx build-base)")


def load_tokenizer(base_model: str, *, trust_remote_code: bool = False):
    """The base model's fast tokenizer, refused when it is missing or does not fit the model's embedding rows, or
    when a base model madx built has changed since."""
    import transformers

    if Path(base_model).is_dir():
        check_base_model_dir(base_model)
        verify_base_model(base_model)
    tokenizer = transformers.AutoTokenizer.from_pretrained(base_model, trust_remote_code=trust_remote_code)
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"base_model {base_model!r}: madx needs a fast tokenizer (tokenizer.json)")
    config = load_config(base_model, trust_remote_code=trust_remote_code)
    check_tokenizer_fits(len(tokenizer), getattr(config, "vocab_size", None), base_model)
    return tokenizer


def _quiet_from_pretrained(cls, base_model, **kwargs):
    import transformers

    verify_base_model(base_model)

    # "newly initialized" classifier warnings are expected for a fresh task head
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        return cls.from_pretrained(base_model, **kwargs)
    finally:
        transformers.logging.set_verbosity(level)


def load_mlm_model(base_model: str, *, trust_remote_code: bool = False):
    import transformers

    return _quiet_from_pretrained(transformers.AutoModelForMaskedLM, base_model, trust_remote_code=trust_remote_code)


def load_encoder(base_model: str, *, trust_remote_code: bool = False):
    """The bare encoder (what a K-adapter trains beside)."""
    import transformers

    return _quiet_from_pretrained(transformers.AutoModel, base_model, trust_remote_code=trust_remote_code)


def load_task_model(base_model: str, auto_class: str, label_names: list[str], *, trust_remote_code: bool = False):
    """The base model with a new head: `auto_class` (AutoModelForTokenClassification, ...ForSequenceClassification,
    ...ForMultipleChoice, ...ForQuestionAnswering); label names for the classification heads."""
    import transformers

    labels = {"num_labels": len(label_names), "id2label": dict(enumerate(label_names)),
              "label2id": {n: i for i, n in enumerate(label_names)}} if label_names else {}
    return _quiet_from_pretrained(getattr(transformers, auto_class), base_model, trust_remote_code=trust_remote_code,
                                  **labels)


def load_finetuned(directory, auto_class: str):
    """A whole fine-tuned task model (full_ft's output) saved with save_pretrained."""
    import transformers

    return getattr(transformers, auto_class).from_pretrained(directory)
