"""New embeddings (madx_emb) in AdapterHub's embeddings format, against the real `adapters` library: AdapterHub
loads the embeddings (and tokenizer) madx saves beside a language adapter, and madx loads AdapterHub's; the
rows AdapterHub's add_embeddings copies from the base are the ones madx's lexical start copies."""

import json
import subprocess
from pathlib import Path

import pytest
import torch
import transformers

import madx
from madx.adapters.embeddings import lexical_start, load_embeddings, save_embeddings, swap_input_embeddings
from madx.data.spm import xlmr_tokenizer

HERE = Path(__file__).parent
CONFIG = dict(vocab_size=0, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              max_position_embeddings=64, type_vocab_size=1, pad_token_id=1, attn_implementation="eager")
BASE_PIECES = ["\u2581the", "\u2581Lu", "geir", "\u2581Mo", "tors", "\u2581in", "\u2581Berlin", "a", "e", "i", "o", "s",
               "t", "r", "\u2581", "n", "l", "g", "M", "L"]
NEW_PIECES = ["\u2581the", "\u2581Лу", "геир", "\u2581Моторс", "\u2581in", "\u2581Берлин", "а", "е", "и", "о", "\u2581",
              "tors", "Л", "М", "с", "т"]
TEXT = "Лугеир Моторс in Берлин"
TOL = 1e-5


def pieces(names):
    return [("<unk>", 0.0)] + [(p, -float(i + 1)) for i, p in enumerate(names)]


@pytest.fixture(scope="module")
def interop(tmp_path_factory, adapterhub_python):
    root = tmp_path_factory.mktemp("embeddings")
    base_tokenizer, tokenizer = xlmr_tokenizer(pieces(BASE_PIECES)), xlmr_tokenizer(pieces(NEW_PIECES))
    base_tokenizer.save_pretrained(root / "base_tokenizer")
    config = dict(CONFIG, vocab_size=len(base_tokenizer))
    torch.manual_seed(0)
    model = transformers.XLMRobertaForMaskedLM(transformers.XLMRobertaConfig(**config)).eval()
    torch.save(model.state_dict(), root / "base.pt")
    base_weight = model.get_input_embeddings().weight.detach().clone()
    weight, _ = lexical_start(tokenizer, base_tokenizer, base_weight)
    weight = weight + 0.3 * torch.randn_like(weight)  # as if trained
    madx.add_adapter(model, "qad", madx.LANGUAGE_ADAPTER)
    with torch.no_grad():
        for module in madx.adapters.model.adapter_modules(model, "qad").values():
            for p in module.parameters():
                p.copy_(0.2 * torch.randn_like(p))
    madx.save_adapter(model, "qad", root / "madx_lang")
    save_embeddings(root / "madx_lang" / "embeddings", weight, tokenizer, {"mode": "new"})
    swap_input_embeddings(model, weight)
    madx.activate(model, "qad")
    input_ids = tokenizer([TEXT, "the Моторс"], padding=True)["input_ids"]
    spec = dict(config={k: v for k, v in config.items() if k != "attn_implementation"}, base_weights=str(root / "base.pt"),
                input_ids=input_ids, text=TEXT, madx_lang=str(root / "madx_lang"),
                madx_embeddings=str(root / "madx_lang" / "embeddings"), base_tokenizer=str(root / "base_tokenizer"),
                hub_embeddings=str(root / "hub_embeddings"), seed=5, out=str(root / "hub.pt"))
    (root / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run([adapterhub_python, str(HERE / "adapterhub_embeddings.py"), str(root / "spec.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with torch.no_grad():
        madx_hidden = model(input_ids=torch.tensor(input_ids), output_hidden_states=True).hidden_states[-1]
    return dict(root=root, hub=torch.load(root / "hub.pt", weights_only=True), madx_hidden=madx_hidden,
                input_ids=torch.tensor(input_ids), tokenizer=tokenizer, base_tokenizer=base_tokenizer,
                base_weight=base_weight, config=config)


def test_adapterhub_loads_madx_embeddings_and_adapter(interop):
    hub = interop["hub"]
    assert (hub["madx.hidden"] - interop["madx_hidden"]).abs().max() <= TOL
    # the tokenizer madx saved reads the same text into the same pieces under AdapterHub's transformers 4.57
    assert hub["madx.tokenizer_ids"].tolist() == interop["tokenizer"](TEXT)["input_ids"]
    assert int(hub["madx.tokenizer_size"]) == len(interop["tokenizer"])


def test_madx_loads_adapterhub_embeddings(interop):
    weight, tokenizer = load_embeddings(interop["root"] / "hub_embeddings", hidden_size=32)
    assert tokenizer.get_vocab() == interop["tokenizer"].get_vocab()
    model = transformers.XLMRobertaForMaskedLM(transformers.XLMRobertaConfig(**interop["config"])).eval()
    model.load_state_dict(torch.load(interop["root"] / "base.pt", weights_only=True))
    swap_input_embeddings(model, weight)
    with torch.no_grad():
        hidden = model(input_ids=interop["input_ids"], output_hidden_states=True).hidden_states[-1]
    assert (hidden - interop["hub"]["hub.hidden"]).abs().max() <= TOL


def test_overlapping_pieces_start_as_adapterhub_starts_them(interop):
    """AdapterHub's add_embeddings copies the rows of pieces both tokenizers have; madx's lexical start copies
    exactly those rows too (and, beyond AdapterHub, starts the others from the base pieces they overlap)."""
    tokenizer, base_tokenizer = interop["tokenizer"], interop["base_tokenizer"]
    ours, counts = lexical_start(tokenizer, base_tokenizer, interop["base_weight"])
    shared = set(tokenizer.get_vocab()) & set(base_tokenizer.get_vocab())
    assert counts["identical"] == len(shared) == 9  # the 5 specials, and ▁the, ▁in, ▁, tors
    for piece in shared:
        i = tokenizer.convert_tokens_to_ids(piece)
        assert torch.equal(ours[i], interop["hub"]["hub.init"][i]), piece
