"""The report's parameter budget (Houlsby et al.'s comparison: adapters against copies of the whole model) and
what a fusion gives over madx, from evaluation JSONs and weights files written here with known sizes."""

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import madx
from madx.cli import main as cli

BASELINES = {"majority": 0.4, "chance": 0.25}


def weights(directory: Path, name: str, n: int) -> str:
    """A weights file of `n` parameters (two tensors, so counting adds them up)."""
    directory.mkdir(parents=True, exist_ok=True)
    save_file({"a": torch.zeros(n - 1), "b": torch.zeros(1)}, str(directory / name))
    return str(directory)


def write_run(evals: Path, setup: str, lang: str, seed: int, score: float, **read) -> None:
    path = evals / "kind" / lang / f"seed{seed}" / f"{setup}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"task": "kind", "source": "en", "lang": lang, "setup": setup, "seed": seed,
                                "task_type": "classification", "accuracy": score, "n_examples": 10,
                                "baselines": BASELINES, **read}))


def test_stored_parameters_counts_every_weights_file_format_of_a_directory(tmp_path):
    weights(tmp_path, "adapter.safetensors", 30)
    torch.save(torch.zeros(4, 5), tmp_path / "embedding.pt")  # madx's (and AdapterHub's) embeddings: one matrix
    torch.save({"w": torch.zeros(7), "b": torch.zeros(3)}, tmp_path / "pytorch_model_head.bin")
    weights(tmp_path / "adapters" / "other", "adapter.safetensors", 99)  # a subfolder is its own artifact
    assert madx.stored_parameters(tmp_path) == 30 + 20  # the .bin beside safetensors: the same weights, older format
    snapshot = tmp_path / "snapshot"  # a hub snapshot with the model in both formats counts it once
    weights(snapshot, "model.safetensors", 40)
    torch.save({"w": torch.zeros(40)}, snapshot / "pytorch_model.bin")
    assert madx.stored_parameters(snapshot) == 40
    legacy = tmp_path / "legacy"  # AdapterHub's legacy adapter directory: pickles only
    legacy.mkdir()
    torch.save({"w": torch.zeros(7), "b": torch.zeros(3)}, legacy / "pytorch_adapter.bin")
    assert madx.stored_parameters(legacy) == 10


def test_a_corrupt_weights_file_is_named(tmp_path):
    (tmp_path / "adapter.safetensors").write_bytes(b"\x00\x01 not a header")
    with pytest.raises(madx.core.errors.InputError, match=r"adapter.safetensors: cannot be read as weights"):
        madx.stored_parameters(tmp_path)


def test_the_budget_counts_each_setups_artifacts_once_against_copies_of_the_base(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = weights(tmp_path / "base", "model.safetensors", 1000)
    la = {lang: weights(tmp_path / "la" / lang, "adapter.safetensors", 60) for lang in ("en", "de")}
    emb = weights(tmp_path / "la_emb" / "de", "adapter.safetensors", 60)
    (Path(emb) / "embeddings").mkdir()
    torch.save(torch.zeros(8, 5), Path(emb) / "embeddings" / "embedding.pt")  # its own input embeddings
    tasks = {}
    for name in ("madx", "task_only", "other_madx"):
        tasks[name] = weights(tmp_path / "tasks" / name, "adapter.safetensors", 25)
        weights(tmp_path / "tasks" / name, "model_head.safetensors", 5)
    fusion = weights(tmp_path / "tasks" / "fusion", "model_adapter_fusion.safetensors", 50)
    weights(Path(fusion), "model_head.safetensors", 5)
    fused = [weights(Path(fusion) / "adapters" / name, "adapter.safetensors", 25) for name in ("kind", "other")]
    full = weights(tmp_path / "tasks" / "full" / "model", "model.safetensors", 1100)
    evals = tmp_path / "eval"
    for seed in (1, 2):  # a second seed adds scores, not stored models
        for lang, madx_score, fused_score in (("en", 0.9, 0.8), ("de", 0.6, 0.7)):
            write_run(evals, "madx", lang, seed, madx_score, base_model=base, task_adapter=tasks["madx"],
                      lang_adapter=la[lang])
            write_run(evals, "task_only", lang, seed, 0.5, base_model=base, task_adapter=tasks["task_only"])
            write_run(evals, "full_ft", lang, seed, 0.55, base_model=base, full_model=full)
            write_run(evals, "madx_fusion", lang, seed, fused_score, base_model=base, task_adapter=fusion,
                      lang_adapter=la[lang], fused=["kind", "other"], fused_adapters=fused)
        write_run(evals, "madx_emb", "de", seed, 0.65, base_model=base, task_adapter=tasks["madx"], lang_adapter=emb,
                  embeddings=f"{emb}/embeddings")
    assert cli(["report", "--eval", str(evals), "--output", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert "copies of the base (1,000 parameters)" in text
    # setup | trained per task | per language | stored | copies | score (de, the only target: mean over seeds)
    expected = {"madx": ("30", "60", 1000 + 30 + 2 * 60, "60.0"),
                "task_only": ("30", "–", 1000 + 30, "50.0"),
                "full_ft": ("1,100", "–", 1100, "55.0"),  # a whole model per task and source, no base beside it
                "madx_emb": ("30", "100", 1000 + 30 + 60 + 40, "65.0"),
                # its fusion and head, the adapters it fuses (not their heads), the language adapters
                "madx_fusion": ("55", "60", 1000 + 55 + 2 * 25 + 2 * 60, "70.0")}
    for setup, (per_task, per_lang, stored, score) in expected.items():
        row = f"| {setup} | 1 | {per_task} | {per_lang} | {stored:,} | {stored / 1000:.2f} | {score} |"
        assert row in text, (row, text[text.index("## Parameter budget"):])
    assert "| *majority* | | | | | | 40.0 |" in text and "| *chance* | | | | | | 25.0 |" in text
    # what the fusion gives, per target, beside madx and the baselines
    assert "## kind: what madx_fusion gives over madx (accuracy x 100, mean over seeds)" in text
    assert "| de | 60.0 | 70.0 | +10.0 | 40.0 | 25.0 |" in text and "| en | 90.0 | 80.0 | -10.0 | 40.0 | 25.0 |" in text


def test_a_budget_without_the_weights_files_says_so(tmp_path):
    evals = tmp_path / "eval"
    write_run(evals, "madx", "de", 1, 0.6, base_model=str(tmp_path / "gone"), task_adapter=str(tmp_path / "gone2"))
    assert cli(["report", "--eval", str(evals), "--output", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert re.search(r"## Parameter budget\n\nNot counted: the weights files the evaluations name are not here", text)


def test_a_hub_base_is_counted_from_the_local_hugging_face_cache(tmp_path, monkeypatch):
    """A base given by hub id (xlm-roberta-base) is counted where the jobs' downloads put it: the hub client's
    cache layout (refs/main naming the snapshot)."""
    import huggingface_hub.constants

    from madx.report.budget import Counter, base_parameters

    repo = tmp_path / "hub" / "models--org--base"
    weights(repo / "snapshots" / "abc123", "model.safetensors", 1234)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)
    assert base_parameters("org/base", Counter()) == 1234
    assert base_parameters("org/absent", Counter()) is None
