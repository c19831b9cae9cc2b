"""K-adapters (Wang et al., Findings of ACL 2021, "K-Adapter: Infusing Knowledge into Pre-Trained Models with
Adapters"): knowledge modules beside a frozen encoder, not inside it.

A K-adapter is a chain of adapter layers. Adapter layer i reads the encoder's hidden state at its layer plus the
previous adapter layer's output (zeros for the first), projects it down, runs it through a few transformer layers
and projects it up again, with a skip connection across the projections:

    x_i = h[layers[i]] + out_{i-1}            out_i = x_i + W_up(Transformer^N(W_down x_i))

`layers` index the encoder's hidden states as transformers returns them (output_hidden_states): 0 is the
embeddings' output, l the output of the l-th transformer layer; the paper's RoBERTa-large model reads 0, 11 and 23,
as its released code does, and sums the two inputs (the paper's text says it concatenates them). The task head
reads the encoder's last hidden state concatenated with each K-adapter's last output (`knowledge_features`).

A task model reads K-adapters through a `KnowledgeReader` (`read_knowledge`): the first layer of its head, a linear
map of the concatenation back to the encoder's width, started as the identity on the encoder's state and zero on the
K-adapters' outputs, so that a task reading K-adapters starts exactly where one without them does; every family's
own head then reads what it returns, where it read the encoder's last hidden state (and BERT's pooler, recomputed).

The base model's own forward never runs a K-adapter: adding one changes none of its outputs. K-adapters live in
`base_model.kadapters` (so they move, cast and count with the model) and are saved in madx's own format, since
AdapterHub has none: kadapter_config.json and kadapter.safetensors, with their checksums.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..core.settings import option
from ..core.files import record_checksums, staged_dir, verify_checksums, write_text, write_with
from .config import AdapterConfigError
from .model import _NAME, base_model, num_layers

KADAPTER_CONFIG = "kadapter_config.json"
READER_DIR = "knowledge"  # in a task output: the knowledge reader and the K-adapters it reads
READER_CONFIG = "knowledge_reader.json"
READER_WEIGHTS = "knowledge_reader.safetensors"
KADAPTER_WEIGHTS = "kadapter.safetensors"
PAPER_LAYERS = (0, 11, 23)  # RoBERTa-large's hidden states the paper's K-adapters read
PAPER_TRANSFORMER_LAYERS = 2  # transformer layers in each adapter layer
PAPER_HIDDEN_SIZE = 768  # the adapter layers' width (down projection), their FFN 3072, 12 attention heads
PAPER_INTERMEDIATE_SIZE = 3072
PAPER_ATTENTION_HEADS = 12
PAPER_INIT_RANGE = 0.0002  # std of the projections' initial weights: each adapter layer starts near its input


class KAdapterError(AdapterConfigError):
    """A K-adapter that cannot be built, loaded or used as asked: names what and what to do."""


@dataclass(frozen=True)
class KAdapterConfig:
    """A K-adapter's shape; the defaults are the paper's (on RoBERTa-large: pick `layers` for a smaller base)."""

    layers: tuple[int, ...] = option(PAPER_LAYERS, "the encoder's hidden states the adapter layers read (0: the "
                                     "embeddings' output, l: the l-th layer's; the paper's are RoBERTa-large's)")
    transformer_layers: int = option(PAPER_TRANSFORMER_LAYERS, "transformer layers in each adapter layer")
    hidden_size: int = option(PAPER_HIDDEN_SIZE, "the adapter layers' width (their down projection)")
    intermediate_size: int = option(PAPER_INTERMEDIATE_SIZE, "the adapter layers' feed-forward size")
    num_attention_heads: int = option(PAPER_ATTENTION_HEADS, "the adapter layers' attention heads")
    dropout: float = option(0.1, "dropout in the adapter layers")
    init_range: float = option(PAPER_INIT_RANGE, "std of the projections' initial weights")

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers or list(self.layers) != sorted(set(self.layers)) or self.layers[0] < 0:
            raise KAdapterError(f"layers {list(self.layers)}: give one or more hidden-state indices, increasing "
                                "(0 = the embeddings' output, l = the l-th transformer layer's)")
        for key in ("transformer_layers", "hidden_size", "intermediate_size", "num_attention_heads"):
            if getattr(self, key) < 1:
                raise KAdapterError(f"{key} {getattr(self, key)}: must be at least 1")
        if self.hidden_size % self.num_attention_heads:
            raise KAdapterError(f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads "
                                f"{self.num_attention_heads}")
        if not 0 <= self.dropout < 1:
            raise KAdapterError(f"dropout {self.dropout}: must be in [0, 1)")

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "layers": list(self.layers)}

    @classmethod
    def from_dict(cls, values: dict, where: str = "K-adapter config") -> KAdapterConfig:
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise KAdapterError(f"{where}: unknown key(s) {sorted(unknown)}")
        return cls(**values)


class KAdapterLayer(nn.Module):
    """down projection -> N transformer layers -> up projection, with a skip connection across them."""

    def __init__(self, model_hidden: int, config: KAdapterConfig):
        super().__init__()
        self.down = nn.Linear(model_hidden, config.hidden_size)
        self.transformer = nn.ModuleList(
            nn.TransformerEncoderLayer(config.hidden_size, config.num_attention_heads, config.intermediate_size,
                                       config.dropout, activation="gelu", batch_first=True)
            for _ in range(config.transformer_layers))
        self.up = nn.Linear(config.hidden_size, model_hidden)
        for projection in (self.down, self.up):
            nn.init.normal_(projection.weight, std=config.init_range)
            nn.init.zeros_(projection.bias)

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None) -> torch.Tensor:
        h = self.down(x)
        for layer in self.transformer:
            h = layer(h, src_key_padding_mask=padding)
        return x + self.up(h)


class KAdapter(nn.Module):
    """The chain of adapter layers over the encoder's hidden states at `config.layers`."""

    def __init__(self, model_hidden: int, config: KAdapterConfig):
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(KAdapterLayer(model_hidden, config) for _ in config.layers)

    def forward(self, hidden_states: tuple[torch.Tensor, ...], attention_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        padding = None if attention_mask is None else attention_mask == 0
        out = torch.zeros_like(hidden_states[0])
        for index, layer in zip(self.config.layers, self.layers):
            out = layer(hidden_states[index] + out, padding)
        return out


def kadapters(model: nn.Module) -> nn.ModuleDict:
    """The model's K-adapters by name (empty when it has none)."""
    return getattr(base_model(model), "kadapters", None) or nn.ModuleDict()


def add_kadapter(model: nn.Module, name: str, config: KAdapterConfig | None = None) -> KAdapter:
    """Add K-adapter `name` beside the model's encoder; the model's own outputs stay exactly what they were."""
    config = config or KAdapterConfig()
    if not _NAME.match(name):
        raise KAdapterError(f"K-adapter name {name!r}: use letters, digits, '-' and '_'")
    base = base_model(model)
    if name in kadapters(model):
        raise KAdapterError(f"K-adapter {name!r} is already in the model; delete it first or pick another name")
    n_layers = num_layers(model)
    if config.layers[-1] > n_layers:
        raise KAdapterError(f"K-adapter {name!r}: layers {list(config.layers)}, but the base model has hidden states "
                            f"0..{n_layers} ({n_layers} layers); the paper's {list(PAPER_LAYERS)} are RoBERTa-large's")
    if "kadapters" not in base._modules:
        base.kadapters = nn.ModuleDict()
    reference = base.embeddings.word_embeddings.weight
    base.kadapters[name] = KAdapter(model.config.hidden_size, config).to(device=reference.device)
    return base.kadapters[name]


def delete_kadapter(model: nn.Module, name: str) -> None:
    base = base_model(model)
    if name not in kadapters(model):
        raise KAdapterError(f"no K-adapter {name!r} in the model (it has: {', '.join(kadapters(model)) or 'none'})")
    del base.kadapters[name]
    if not len(base.kadapters):
        del base.kadapters


def knowledge_features(model: nn.Module, names: list[str] | tuple[str, ...], input_ids: torch.Tensor,
                       attention_mask: torch.Tensor | None = None, **inputs) -> torch.Tensor:
    """(batch, length, hidden x (1 + len(names))): the encoder's last hidden state (through the adapters active in
    it) and each named K-adapter's output, concatenated in that order: what a task head reads."""
    found = kadapters(model)
    missing = [name for name in names if name not in found]
    if missing:
        raise KAdapterError(f"no K-adapter {missing[0]!r} in the model (it has: {', '.join(found) or 'none'})")
    outputs = base_model(model)(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                                **inputs)
    states = outputs.hidden_states
    return torch.cat([outputs.last_hidden_state, *(found[name](states, attention_mask) for name in names)], dim=-1)


def train_kadapters(model: nn.Module, *names: str) -> None:
    """Freeze everything but the named K-adapters (a K-adapter trains alone, on its knowledge task)."""
    found = kadapters(model)
    missing = [name for name in names if name not in found]
    if missing or not names:
        raise KAdapterError(f"train_kadapters: give K-adapters of the model (it has: {', '.join(found) or 'none'})")
    model.requires_grad_(False)
    for name in names:
        found[name].requires_grad_(True)


def save_kadapter(model: nn.Module, name: str, directory: str | os.PathLike, records: dict | None = None) -> Path:
    """kadapter_config.json (its config and the base it was made for) and kadapter.safetensors, with checksums, and
    `records` ({file name: text}: how it was trained); the directory appears complete or not at all."""
    found = kadapters(model)
    if name not in found:
        raise KAdapterError(f"no K-adapter {name!r} in the model (it has: {', '.join(found) or 'none'})")
    module = found[name]
    meta = {"name": name, "config": module.config.to_dict(), "model_type": model.config.model_type,
            "hidden_size": model.config.hidden_size, "num_hidden_layers": num_layers(model)}
    tensors = {key: value.detach().to("cpu").contiguous() for key, value in module.state_dict().items()}
    with staged_dir(directory) as staging:
        write_text(staging / KADAPTER_CONFIG, json.dumps(meta, indent=2) + "\n")
        write_with(staging / KADAPTER_WEIGHTS, lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))
        record_checksums(staging, [staging / KADAPTER_CONFIG, staging / KADAPTER_WEIGHTS])
        for file_name, text in (records or {}).items():
            write_text(staging / file_name, text)
    return Path(directory)


def load_kadapter(model: nn.Module, directory: str | os.PathLike, name: str | None = None) -> str:
    """Add the K-adapter saved in `directory` (as `name`, default its own) with its weights; a directory made for
    another base, or weights that do not fit, load nothing."""
    directory = Path(directory)
    config_file, weights_file = directory / KADAPTER_CONFIG, directory / KADAPTER_WEIGHTS
    if not config_file.is_file() or not weights_file.is_file():
        raise KAdapterError(f"{directory}: not a K-adapter directory (needs {KADAPTER_CONFIG} and {KADAPTER_WEIGHTS})")
    verify_checksums(directory, [config_file, weights_file], error=KAdapterError)
    meta = json.loads(config_file.read_text())
    for key, has in (("model_type", model.config.model_type), ("hidden_size", model.config.hidden_size)):
        if meta.get(key) != has:
            raise KAdapterError(f"{config_file}: made for {key} {meta.get(key)!r}, the model has {has!r}")
    config = KAdapterConfig.from_dict(meta["config"], where=str(config_file))
    name = name or meta["name"]
    try:
        state = load_file(str(weights_file))
    except SafetensorError as err:
        raise KAdapterError(f"{weights_file}: not a readable safetensors file ({err}); save the K-adapter again"
                            ) from None
    module = add_kadapter(model, name, config)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        delete_kadapter(model, name)
        raise KAdapterError(f"{weights_file}: the weights do not fit its config ({str(err).splitlines()[0]}); "
                            "save the K-adapter again") from None
    return name


# ---- a task head reading K-adapters


class KnowledgeReader(nn.Module):
    """[h; k_1; ...; k_n] -> the encoder's width: a linear map started as [I 0 ... 0] (the encoder's state passes
    through unchanged, the K-adapters' outputs are read with weight zero), trained with the task's head."""

    def __init__(self, hidden_size: int, names: tuple[str, ...]):
        super().__init__()
        self.names = tuple(names)
        self.linear = nn.Linear(hidden_size * (1 + len(self.names)), hidden_size)
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.weight[:, :hidden_size] = torch.eye(hidden_size)
            self.linear.bias.zero_()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features)


def knowledge_reader(model: nn.Module) -> KnowledgeReader | None:
    return getattr(base_model(model), "knowledge_reader", None)


def read_knowledge(model: nn.Module, names: list[str] | tuple[str, ...]) -> KnowledgeReader:
    """Make the model's head read its K-adapters `names` (with the encoder's last hidden state, through a new
    KnowledgeReader); the K-adapters stay frozen, the reader trains with the head. Undone by `stop_reading_knowledge`
    (and remove_adapters)."""
    found = kadapters(model)
    missing = [name for name in names if name not in found]
    if missing or not names:
        raise KAdapterError(f"read_knowledge: give K-adapters of the model (it has: {', '.join(found) or 'none'})")
    if knowledge_reader(model) is not None:
        raise KAdapterError("the model's head reads K-adapters already; stop_reading_knowledge first")
    base = base_model(model)
    reference = base.embeddings.word_embeddings.weight
    reader = KnowledgeReader(model.config.hidden_size, tuple(names)).to(device=reference.device)
    base.knowledge_reader = reader
    found.requires_grad_(False)
    masks = []

    def before(module, args, kwargs):  # the K-adapters read every hidden state, under the batch's padding mask
        masks.append(kwargs.get("attention_mask", args[1] if len(args) > 1 else None))
        return args, {**kwargs, "output_hidden_states": True}

    def after(module, args, kwargs, output):
        mask = masks.pop()
        states = output.hidden_states
        features = torch.cat([output.last_hidden_state, *(found[name](states, mask) for name in reader.names)], -1)
        output["last_hidden_state"] = reader(features.to(reader.linear.weight.dtype)).to(states[-1].dtype)
        if getattr(output, "pooler_output", None) is not None and getattr(base, "pooler", None) is not None:
            output["pooler_output"] = base.pooler(output.last_hidden_state)
        return output

    base.__dict__["_madx_knowledge"] = [base.register_forward_pre_hook(before, with_kwargs=True),
                                        base.register_forward_hook(after, with_kwargs=True)]
    return reader


def read_kadapters(model: nn.Module, directories) -> dict[str, str]:
    """Load the K-adapters saved in `directories` and make the model's head read them (read_knowledge): {name: its
    directory}, in order."""
    loaded: dict[str, str] = {}
    for directory in directories:
        name = json.loads((Path(directory) / KADAPTER_CONFIG).read_text())["name"] if (
            Path(directory) / KADAPTER_CONFIG).is_file() else None
        if name in loaded:
            raise KAdapterError(f"{directory} and {loaded[name]} are both K-adapter {name!r}: give each once")
        loaded[load_kadapter(model, directory)] = str(directory)
    read_knowledge(model, list(loaded))
    return loaded


def stop_reading_knowledge(model: nn.Module) -> None:
    """Take the knowledge reader out (the K-adapters stay in the model)."""
    base = base_model(model)
    for hook in base.__dict__.pop("_madx_knowledge", ()):
        hook.remove()
    if "knowledge_reader" in base._modules:
        del base.knowledge_reader


def save_knowledge_reader(model: nn.Module, directory: Path, kadapter_dirs: dict[str, str]) -> None:
    """knowledge/knowledge_reader.json (the K-adapters it reads, in order, and where each was loaded from) and its
    weights, with checksums, in a task output `directory`."""
    reader = knowledge_reader(model)
    out = Path(directory) / READER_DIR
    out.mkdir(parents=True, exist_ok=True)
    meta = {"names": list(reader.names), "kadapters": {name: str(kadapter_dirs[name]) for name in reader.names},
            "hidden_size": model.config.hidden_size}
    tensors = {key: value.detach().to("cpu").contiguous() for key, value in reader.state_dict().items()}
    write_text(out / READER_CONFIG, json.dumps(meta, indent=2) + "\n")
    write_with(out / READER_WEIGHTS, lambda tmp: save_file(tensors, str(tmp)))
    record_checksums(out, [out / READER_CONFIG, out / READER_WEIGHTS])


def reader_config(task_dir: str | os.PathLike) -> dict | None:
    """The knowledge reader a task output's head reads through ({"names", "kadapters": {name: dir}}), or None."""
    config_file = Path(task_dir) / READER_DIR / READER_CONFIG
    if not config_file.is_file():
        return None
    verify_checksums(config_file.parent, [config_file], error=KAdapterError)
    return json.loads(config_file.read_text())


def load_knowledge_reader(model: nn.Module, task_dir: str | os.PathLike) -> KnowledgeReader:
    """The knowledge reader saved in a task output, over the model's K-adapters of its names (loaded already)."""
    out = Path(task_dir) / READER_DIR
    meta = reader_config(task_dir)
    verify_checksums(out, [out / READER_WEIGHTS], error=KAdapterError)
    reader = read_knowledge(model, meta["names"])
    try:
        reader.load_state_dict(load_file(str(out / READER_WEIGHTS)), strict=True)
    except (RuntimeError, SafetensorError) as err:
        stop_reading_knowledge(model)
        raise KAdapterError(f"{out / READER_WEIGHTS}: does not fit the K-adapters {meta['names']} on this model "
                            f"({str(err).splitlines()[0]}); retrain the task") from None
    return reader
