"""Every weights file madx writes carries its sha256 (madx_checksums.json beside it), verified at load: heads,
embeddings, full_ft's model and training checkpoints changed after they were written are errors naming the file
and what to do; directories without the record (AdapterHub's) load as before; a code-running pickle is refused."""

import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file

import madx
from madx.adapters.embeddings import EmbeddingLoadError, load_embeddings, save_embeddings
from madx.adapters.heads import HeadLoadError
from madx.core.files import CHECKSUMS, ChecksumError, sha256_of
from madx.data.spm import xlmr_tokenizer
from madx.tasks.families import family, load_head, save_head
from madx.training import checkpoints
from madx.training.accelerator import TrainingError
from madx.training.checkpoints import BestWeights, Checkpoints, trainable_state
from madx.training.task import BEST_DIR, BestOnDev
from madx.training.task_output import load_full_model, write_task_output
from tiny import flip_bytes, tiny_model

CHANGED = "its bytes differ from the sha256 madx recorded"


def tokenizer_of(n_pieces):
    return xlmr_tokenizer([(f"\u2581w{i}", -1.0) for i in range(n_pieces)])


def test_a_changed_head_is_refused_and_one_without_the_record_loads(tmp_path):
    model = tiny_model("xlm-roberta", head="token")
    save_head(model, tmp_path, "ner", ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], "ner")
    recorded = json.loads((tmp_path / CHECKSUMS).read_text())
    assert set(recorded) == {"model_head.safetensors", "head_config.json"}
    flip_bytes(tmp_path / "model_head.safetensors")
    load_file(tmp_path / "model_head.safetensors")  # still a readable file
    with pytest.raises(HeadLoadError, match=rf"model_head.safetensors: {CHANGED} .*delete {tmp_path}"):
        load_head(tiny_model("xlm-roberta", head="token"), tmp_path)
    (tmp_path / CHECKSUMS).unlink()  # as AdapterHub writes it: no record, loaded unchecked
    load_head(tiny_model("xlm-roberta", head="token"), tmp_path)


def test_a_code_running_head_pickle_is_refused_with_a_clear_message(tmp_path):
    class RunsCode:
        def __reduce__(self):
            return (os.system, ("echo this would run",))

    model = tiny_model("xlm-roberta", head="token")
    save_head(model, tmp_path, "ner", ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], "ner")
    (tmp_path / "model_head.safetensors").unlink()
    torch.save({"heads.ner.1.weight": RunsCode()}, tmp_path / "pytorch_model_head.bin")
    with pytest.raises(HeadLoadError, match=r"pytorch_model_head.bin: not a plain tensor file .*refuses it for safety"
                       ) as err:
        load_head(tiny_model("xlm-roberta", head="token"), tmp_path)
    assert "weights_only" not in str(err.value)


def test_changed_embeddings_are_refused(tmp_path):
    tokenizer = tokenizer_of(20)
    weight = torch.randn(len(tokenizer), 32)
    save_embeddings(tmp_path / "emb", weight, tokenizer, {"mode": "new"})
    recorded = json.loads((tmp_path / "emb" / CHECKSUMS).read_text())
    assert "embedding.pt" in recorded and any(name.startswith("tokenizer/") for name in recorded)
    loaded, _ = load_embeddings(tmp_path / "emb", hidden_size=32)
    assert torch.equal(loaded, weight)
    changed = weight.clone()
    changed[3, 5] += 1.0  # the same size on disk: only the checksum tells
    torch.save(changed, tmp_path / "emb" / "embedding.pt")
    with pytest.raises(EmbeddingLoadError, match=f"embedding.pt: {CHANGED}"):
        load_embeddings(tmp_path / "emb", hidden_size=32)


def test_broken_embeddings_name_the_language_adapter_to_rebuild(tmp_path):
    """Snakemake's output is the adapter directory: the remedy deletes that, never only its embeddings/ (which would
    leave the adapter "done" and rebuild nothing); a tokenizer file the record lists and that is gone is an error."""
    adapter, tokenizer = tmp_path / "sw", tokenizer_of(20)
    emb = save_embeddings(adapter / "embeddings", torch.randn(len(tokenizer), 32), tokenizer, {"mode": "new"})
    flip_bytes(emb / "embedding.pt")
    with pytest.raises(EmbeddingLoadError, match=f"embedding.pt: {CHANGED}") as err:
        load_embeddings(emb, hidden_size=32)
    assert f"delete {adapter} (the adapter" in str(err.value) and f"delete {emb} " not in str(err.value)

    emb = save_embeddings(adapter / "embeddings", torch.randn(len(tokenizer), 32), tokenizer, {"mode": "new"})
    recorded = [n for n in json.loads((emb / CHECKSUMS).read_text()) if n.startswith("tokenizer/")]
    assert len(recorded) >= 2
    for name in recorded:  # each one gone is refused, the others still there
        saved = (emb / name).read_bytes()
        (emb / name).unlink()
        with pytest.raises(EmbeddingLoadError, match=f"{emb / name}: missing; {CHECKSUMS} lists it") as err:
            load_embeddings(emb, hidden_size=32)
        assert f"delete {adapter} (the adapter" in str(err.value)
        (emb / name).write_bytes(saved)
    load_embeddings(emb, hidden_size=32)


def test_full_ft_model_files_are_verified(tmp_path):
    model = tiny_model("xlm-roberta", head="token")
    work = tmp_path / "work"
    work.mkdir()
    (work / "train_log.jsonl").write_text("{}\n")
    out = tmp_path / "full"
    write_task_output(model, "ner", "full_ft", "base", ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], "ner", work, out,
                      {"setup": "full_ft"})
    recorded = json.loads((out / CHECKSUMS).read_text())
    assert {"model/model.safetensors", "model/config.json", "model_head.safetensors"} <= set(recorded)
    assert recorded["model/model.safetensors"] == sha256_of(out / "model" / "model.safetensors")
    load_full_model(out, "AutoModelForTokenClassification")
    flip_bytes(out / "model" / "model.safetensors")
    with pytest.raises(ChecksumError, match=f"model/model.safetensors: {CHANGED}"):
        load_full_model(out, "AutoModelForTokenClassification")
    (out / "model" / "config.json").unlink()
    with pytest.raises(ChecksumError, match=f"model/config.json: missing; {CHECKSUMS} lists it"):
        load_full_model(out, "AutoModelForTokenClassification")


class OneProcess:
    is_main_process, process_index = True, 0

    def wait_for_everyone(self):
        pass


def test_a_changed_checkpoint_is_refused_on_resume(tmp_path):
    module = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(module.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    checkpoints.save(5, module, optimizer, scheduler, OneProcess())
    latest = checkpoints.latest()
    assert set(json.loads((latest / CHECKSUMS).read_text())) == {"state.pt", "rng-0.pt"}
    assert checkpoints.load(latest, module, optimizer, scheduler, OneProcess()) == 5
    state = torch.load(latest / "state.pt", weights_only=True)
    state["weights"]["weight"][0, 0] += 1.0
    torch.save(state, latest / "state.pt")
    with pytest.raises(TrainingError, match=f"state.pt: {CHANGED} .*delete .*step-0000005 and rerun"):
        checkpoints.load(latest, module, optimizer, scheduler, OneProcess())


def test_madx_adapter_directory_holds_only_adapterhub_files_and_the_record(tmp_path):
    """What AdapterHub reads is unchanged: its two files, and the record beside them."""
    model = tiny_model("xlm-roberta")
    madx.add_adapter(model, "sw", madx.LANGUAGE_ADAPTER)
    madx.save_adapter(model, "sw", tmp_path / "sw")
    assert sorted(p.name for p in (tmp_path / "sw").iterdir()) == [
        "adapter.safetensors", "adapter_config.json", CHECKSUMS]


def best_of(step, value):
    return {"score": value / 10, "step": step, "weights": {"w": torch.full((2,), float(value))}}


def test_the_best_on_dev_weights_are_verified_and_a_kill_never_blocks_a_resume(tmp_path, monkeypatch):
    store = BestWeights(tmp_path / "work" / "best")
    assert not store.exists()
    store.save(best_of(10, 3))
    store.save(best_of(20, 5))
    assert store.load()["step"] == 20 and sorted(p.name for p in store.directory.iterdir()) == [
        "best-000002.pt", CHECKSUMS]  # the older best gone

    # killed between writing the new best and its record: the record still vouches for the previous one
    def killed(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(checkpoints, "record_checksums", killed)
    with pytest.raises(KeyboardInterrupt):
        store.save(best_of(30, 7))
    monkeypatch.undo()
    assert (store.directory / "best-000003.pt").exists()  # the unrecorded file is left, never read
    assert store.load()["step"] == 20
    store.save(best_of(30, 7))
    assert store.load()["step"] == 30 and len(list(store.directory.glob("best-*.pt"))) == 1

    flip_bytes(store.directory / "best-000003.pt")
    with pytest.raises(TrainingError, match=rf"best-000003.pt: {CHANGED} .*delete {tmp_path / 'work'} and rerun"):
        store.load()
    (store.directory / "best-000003.pt").unlink()
    with pytest.raises(TrainingError, match=f"best-000003.pt: missing; {CHECKSUMS} lists it"):
        store.load()


def test_task_training_resumes_from_the_verified_best(tmp_path):
    """BestOnDev reads the best so far back at start (a resume): changed, it is refused, never restored and saved
    again under a fresh checksum; an older madx's unchecked best.pt is refused too."""
    model = torch.nn.Linear(2, 2)
    work = tmp_path / "ner.work"
    BestWeights(work / BEST_DIR).save({"score": 0.5, "step": 10, "weights": trainable_state(model)})

    def best_on_dev():
        return BestOnDev(model, family("ner"), [], [], [], None, 0, work / BEST_DIR, OneProcess(), "en")
    assert best_on_dev().best_score == 0.5
    flip_bytes(next((work / BEST_DIR).glob("best-*.pt")))
    with pytest.raises(TrainingError, match=f"best-000001.pt: {CHANGED}"):
        best_on_dev()
    shutil.rmtree(work / BEST_DIR)
    assert best_on_dev().best_score == -1.0  # no best yet: the dev evaluations find it
    torch.save({"score": 0.5}, work / "best.pt")
    with pytest.raises(TrainingError, match="best.pt: best-on-dev weights without a checksum .*older madx"):
        best_on_dev()
