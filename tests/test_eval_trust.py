"""An evaluation's number is right or refused: a collapsed model is flagged in the log and the JSON, beside the
test set's baselines, per-class scores and confusion; NaN scores give no result but an error; a result is
recomputed only when what it depends on changes (never a log or a timing), and the log says which input changed.

The task directories are built by hand on a tiny base (no training): a classification head whose output layer is
zero and whose bias picks a class, so every prediction, and so the whole confusion matrix, is known."""

import json
import logging
import shutil

import pytest
import torch
import transformers

import madx
from madx.core.files import CHECKSUMS
from madx.data import hub as hf
from madx.data.spm import xlmr_tokenizer
from madx.evaluation.evaluate import EvaluationError, Run, evaluate_runs
from madx.training.task_output import write_task_output
from tiny import flip_bytes, tiny_config

LABELS = ["neg", "neu", "pos"]
WORDS = [f"w{i}" for i in range(40)]
GOLD = ["neg"] * 6 + ["neu"] * 3 + ["pos"] * 3  # majority: neg, 6 of 12


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_trust")
    tokenizer = xlmr_tokenizer([(f"\u2581{w}", -1.0) for w in WORDS])
    model = transformers.XLMRobertaForMaskedLM(tiny_config(vocab_size=len(tokenizer)))
    model.save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    test = root / "test.jsonl"
    test.write_text("".join(json.dumps({"text": f"{WORDS[i]} {WORDS[i + 1]}", "label": label}) + "\n"
                            for i, label in enumerate(GOLD)))
    return root / "base", test


def task_dir(base_dir, out, bias, step_time=1.0):
    """A task_only output whose head always answers the class with the highest `bias` (its other weights seeded:
    built again, it is the same)."""
    torch.manual_seed(0)
    model = hf.load_task_model(str(base_dir), "AutoModelForSequenceClassification", LABELS)
    madx.add_adapter(model, "senti", madx.TASK_ADAPTER)
    with torch.no_grad():
        model.classifier.out_proj.weight.zero_()
        model.classifier.out_proj.bias.copy_(torch.tensor(bias))
    work = out.with_name(out.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    (work / "train_log.jsonl").write_text(json.dumps({"step": 10, "loss": 1.0, "seconds": step_time}) + "\n")
    write_task_output(model, "senti", "task_only", str(base_dir), LABELS, "classification", work, out,
                      {"setup": "task_only", "seconds": step_time, "settings": {"max_length": 32}})
    return out


def evaluate(base_dir, test, task, output):
    [result] = evaluate_runs(str(base_dir), [Run("task_only", 1, task, None, output)], test, lang="en",
                             task="senti", source="en")
    return result


def test_a_collapsed_model_is_flagged_beside_its_baselines_and_confusion(base, tmp_path, caplog):
    base_dir, test = base
    task = task_dir(base_dir, tmp_path / "task", [0.0, 5.0, 0.0])  # always "neu"
    with caplog.at_level(logging.INFO, logger="madx.evaluation.evaluate"):
        result = evaluate(base_dir, test, task, tmp_path / "eval.json")
    assert result == json.loads((tmp_path / "eval.json").read_text())
    assert result["accuracy"] == pytest.approx(3 / 12)
    assert result["baselines"] == {"majority": 0.5, "chance": pytest.approx(1 / 3)}
    assert result["confusion"] == {"labels": LABELS, "matrix": [[0, 6, 0], [0, 3, 0], [0, 3, 0]]}
    assert result["per_class"]["neu"] == {"precision": 0.25, "recall": 1.0, "f1": pytest.approx(0.4), "support": 3}
    assert result["per_class"]["neg"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 6}
    [warning] = result["warnings"]
    assert "every example is predicted 'neu'" in warning
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [f"senti en->en task_only seed 1: {warning}"]
    logged = next(r.getMessage() for r in caplog.records if "[1/1]" in r.getMessage())
    assert "'accuracy': 0.25" in logged and "baselines {'majority': 0.5, 'chance': 0.3333}" in logged


def test_nan_scores_are_refused_and_leave_no_result(base, tmp_path):
    base_dir, test = base
    task = task_dir(base_dir, tmp_path / "task", [0.0, 5.0, 0.0])
    output = tmp_path / "eval.json"
    evaluate(base_dir, test, task, output)
    assert output.exists()
    task_dir(base_dir, task, [0.0, float("nan"), 0.0])  # retrained to broken weights
    with pytest.raises(EvaluationError, match=r"senti en->en task_only seed 1: the model's scores are NaN or infinite "
                                              r"for 12 of 12 inputs, so no result is written .*retrain them") as err:
        evaluate(base_dir, test, task, output)
    assert str(task) in str(err.value)
    assert not output.exists()  # the earlier number does not stand for the new weights


def test_fingerprint_covers_what_the_number_depends_on_and_the_log_says_what_changed(base, tmp_path, caplog):
    base_dir, test = base
    task = task_dir(base_dir, tmp_path / "task", [5.0, 0.0, 0.0])
    output = tmp_path / "eval.json"
    first = evaluate(base_dir, test, task, output)
    assert set(first["inputs"]) == {"madx", "base_model", "test", "precision", "batch_size", "setup", "task_weights",
                                    "head", "task_settings", "lang_adapter"}
    assert first["inputs"]["task_settings"]["max_length"] == 32
    written = output.stat().st_mtime_ns

    # retrained to identical weights: new train log, timings, checkpoints; the same number, nothing recomputed
    shutil.rmtree(task)
    task_dir(base_dir, task, [5.0, 0.0, 0.0], step_time=7.5)
    (task / "checkpoints").mkdir()
    (task / "checkpoints" / "state.pt").write_bytes(b"later")
    assert json.loads((task / "task.json").read_text())["seconds"] == 7.5
    with caplog.at_level(logging.INFO, logger="madx.evaluation.evaluate"):
        assert evaluate(base_dir, test, task, output) == first
    assert output.stat().st_mtime_ns == written
    assert any("finished before with these exact inputs" in r.getMessage() for r in caplog.records)

    # another head: recomputed, and the log names the input that changed, with both digests
    caplog.clear()
    task_dir(base_dir, task, [0.0, 0.0, 5.0])
    with caplog.at_level(logging.INFO, logger="madx.evaluation.evaluate"):
        again = evaluate(base_dir, test, task, output)
    reason = next(r.getMessage() for r in caplog.records if "to compute" in r.getMessage())
    old, new = first["inputs"]["head"][:12], again["inputs"]["head"][:12]
    assert reason.endswith(f"changed since its earlier result: head {old} -> {new}"), reason
    assert again["accuracy"] == pytest.approx(3 / 12) and again["fingerprint"] != first["fingerprint"]
    assert again["inputs"]["task_weights"] == first["inputs"]["task_weights"]

    # a result from an older madx, without recorded inputs: recomputed, and the log says so
    caplog.clear()
    stale = {k: v for k, v in again.items() if k != "inputs"}
    output.write_text(json.dumps({**stale, "fingerprint": "0" * 64}))
    with caplog.at_level(logging.INFO, logger="madx.evaluation.evaluate"):
        evaluate(base_dir, test, task, output)
    assert any("records no inputs (written by an older madx)" in r.getMessage() for r in caplog.records)


def test_a_corrupted_task_adapter_is_refused_at_evaluation(base, tmp_path):
    base_dir, test = base
    task = task_dir(base_dir, tmp_path / "task", [5.0, 0.0, 0.0])
    assert {"adapter.safetensors", "model_head.safetensors"} <= set(json.loads((task / CHECKSUMS).read_text()))
    flip_bytes(task / "adapter.safetensors", at=-6)
    with pytest.raises(madx.AdapterLoadError, match=r"task/adapter.safetensors: its bytes differ from the sha256"):
        evaluate(base_dir, test, task, tmp_path / "eval.json")
    assert not (tmp_path / "eval.json").exists()


def test_a_ready_task_adapter_by_hub_id_evaluates_as_its_directory(base, tmp_path, monkeypatch):
    """tasks.<t>.adapter by hub id: the run resolves it from the hub cache to the same numbers as the directory,
    and its result records the id and the commit it resolved to."""
    from hubcache import offline_cache, publish

    base_dir, test = base
    task = task_dir(base_dir, tmp_path / "task", [0.0, 0.0, 5.0])  # always "pos"
    offline_cache(monkeypatch, tmp_path / "hub")
    publish(tmp_path / "hub", "someone/senti-adapter", task, "e" * 40)
    from_dir = evaluate(base_dir, test, task, tmp_path / "dir.json")
    from_hub = evaluate(base_dir, test, "someone/senti-adapter", tmp_path / "hub.json")
    assert from_hub["accuracy"] == from_dir["accuracy"] == pytest.approx(3 / 12)
    assert from_hub["inputs"]["task_weights"] == from_dir["inputs"]["task_weights"]
    assert from_hub["inputs"]["hub"] == [{"id": "someone/senti-adapter", "commit": "e" * 40}]


def test_related_languages_that_do_not_read_are_refused_naming_the_option(tmp_path, capsys):
    from madx.cli import main as cli

    args = ["evaluate", "--base-model", "b", "--test", "t.jsonl", "--output", str(tmp_path / "o.json"), "--task",
            "senti", "--lang", "mr", "--setup", "madx_nearest", "--task-dir", "t", "--lang-adapter", "la"]
    assert cli([*args, "--related", "hi=near"]) != 0
    assert "--related hi=near: expected LANG or LANG=DISTANCE with DISTANCE a number" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()
