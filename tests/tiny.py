"""Tiny in-memory models of every supported architecture, shared by the tests."""

import torch
import transformers

import madx

TINY = dict(
    vocab_size=120, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
    max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
)
ARCHS = {
    "bert": (transformers.BertConfig, dict(pad_token_id=0)),
    "roberta": (transformers.RobertaConfig, dict(pad_token_id=1)),
    "xlm-roberta": (transformers.XLMRobertaConfig, dict(pad_token_id=1)),
    "deberta-v2": (transformers.DebertaV2Config, dict(pad_token_id=0, relative_attention=True, position_buckets=8,
                                                    pos_att_type=["p2c", "c2p"], max_relative_positions=16)),
    # DeBERTa-v2/v3's newer MLM head (legacy=False): the vocabulary projection is a matmul inside the head
    "deberta-v2-new-head": (transformers.DebertaV2Config, dict(pad_token_id=0, relative_attention=True, position_buckets=8,
                                                             pos_att_type=["p2c", "c2p"], max_relative_positions=16,
                                                             legacy=False)),
}

# The XLM-R the AdapterHub interop tests build on both sides (JSON-able: it goes into their spec files), and a batch
INTEROP_CONFIG = dict(vocab_size=120, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
                      max_position_embeddings=64, type_vocab_size=1, attn_implementation="eager", pad_token_id=1,
                      num_labels=3)
INTEROP_BATCH = {"input_ids": [[0, 5, 17, 99, 42, 8, 2, 1], [0, 33, 7, 2, 1, 1, 1, 1]],
                 "attention_mask": [[1] * 8, [1, 1, 1, 1, 0, 0, 0, 0]]}


def tiny_config(model_type="xlm-roberta", **overrides):
    config_class, extra = ARCHS[model_type]
    return config_class(**{**TINY, **extra, **overrides})


def tiny_model(model_type="xlm-roberta", head="mlm", **overrides):
    config = tiny_config(model_type, **overrides)
    if head == "mlm":
        return transformers.AutoModelForMaskedLM.from_config(config).eval()
    if head == "token":
        config.num_labels = 5
        return transformers.AutoModelForTokenClassification.from_config(config).eval()
    return transformers.AutoModel.from_config(config).eval()


def flip_bytes(file, at=-8, count=4):
    """Same-size corruption of a file: `count` bytes inverted at offset `at` (from the end: inside a weights file's
    tensor data, so the file still reads and only a checksum can tell)."""
    data = bytearray(file.read_bytes())
    for i in range(count):
        data[at + i] ^= 0xFF
    file.write_bytes(bytes(data))


def randomize(modules, seed, scale=0.2):
    """Every parameter of `modules` drawn from N(0, scale²) with its own generator (an adapter away from identity)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * scale)


def perturb_adapter(model, name, scale=0.2):
    """Adapter `name`'s parameters drawn from N(0, scale²) by torch's global generator (each test seeds it)."""
    with torch.no_grad():
        for module in madx.adapters.model.adapter_modules(model, name).values():
            for p in module.parameters():
                p.copy_(torch.randn_like(p) * scale)


def randomize_adapter(model, name, seed, scale=0.2):
    randomize(madx.adapters.model.adapter_modules(model, name).values(), seed, scale)


def madx_outputs(model, batch, *setup):
    """(last hidden state, logits) of `model` on `batch` (lists or tensors) with `setup` active."""
    madx.activate(model, *setup)
    batch = {k: torch.as_tensor(v) for k, v in batch.items()}
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    return out.hidden_states[-1], out.logits
