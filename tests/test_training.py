"""The madx commands on a tiny base model and synthetic data that madx itself makes."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from seqeval.metrics import f1_score

import madx
from madx.cli import main as cli
from madx.commands.train_lang import parser as train_lang_parser
from madx.core.errors import InputError
from madx.core.settings import TrainSettings
from madx.tasks.tagging import encode, read_labelled
from madx.evaluation.models import build_eval_model
from madx.training.task import predict

LANG_ARGS = ["--seq-len", "48", "--batch-size", "16", "--lr", "5e-3", "--log-every", "5"]


def read_log(directory):
    return [json.loads(line) for line in (Path(directory) / "train_log.jsonl").read_text().splitlines()]


def weights(directory):
    return load_file(str(Path(directory) / "adapter.safetensors"))


def test_help_for_every_command(capsys):
    for command in ("train-lang", "train-task", "evaluate", "report", "inspect"):
        with pytest.raises(SystemExit) as exit_:
            cli([command, "--help"])
        assert exit_.value.code == 0
        assert f"madx {command}" in capsys.readouterr().out
    assert cli(["--help"]) == 0


def test_compile_setting_forms():
    assert TrainSettings(compile=True).compile == "default" and TrainSettings(compile=False).compile == ""
    assert TrainSettings(compile="reduce-overhead").compile == "reduce-overhead"
    with pytest.raises(ValueError, match="compile='fast'"):
        TrainSettings(compile="fast")
    with pytest.raises(ValueError, match="needs grad_accum 1"):  # CUDA graph replays reuse gradient memory
        TrainSettings(compile="reduce-overhead", grad_accum=2)
    required = ["--base-model", "b", "--lang", "xx", "--corpus", "c.txt", "--output", "o"]
    for flags, mode in (([], ""), (["--compile"], "default"), (["--compile", "reduce-overhead"], "reduce-overhead"),
                        (["--compile", "--no-compile"], "")):
        assert train_lang_parser().parse_args(required + flags).compile == mode


def test_mlm_loss_goes_down(tiny_base, tmp_path):
    data, base = tiny_base
    out = tmp_path / "qac"
    assert cli(["train-lang", "--base-model", str(base), "--lang", "qac", "--corpus", str(data / "corpora/qac.txt"),
                "--output", str(out), "--max-steps", "200", *LANG_ARGS]) == 0
    log = read_log(out)
    assert [r["step"] for r in log] == list(range(5, 201, 5))
    assert all(r["tokens_per_s"] > 0 and r["lr"] >= 0 for r in log)
    first, last = sum(r["loss"] for r in log[:3]) / 3, sum(r["loss"] for r in log[-3:]) / 3
    assert last < first - 0.3, (first, last)
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["config"]["inv_adapter"] == "nice" and config["config"]["reduction_factor"] == 2
    # the held-out diagnostic: 1% of the blocks never trained on, where the adapter must beat the bare base model
    heldout = json.loads((out / "training.json").read_text())["heldout"]
    assert heldout["blocks"] >= 1 and heldout["perplexity"] < heldout["base_perplexity"], heldout
    assert not (tmp_path / "qac.work").exists()  # checkpoints removed once the adapter is in place


def _train_lang(base, corpus, out, steps, extra=()):
    return [sys.executable, "-m", "madx.cli", "train-lang", "--base-model", str(base), "--lang", "qad",
            "--corpus", str(corpus), "--output", str(out), "--max-steps", str(steps), *LANG_ARGS, *extra]


def kill_after_checkpoint_and_rerun(command, out, step, env):
    """Run `command` (writing `out`), SIGKILL it once its step-`step` checkpoint is complete, run it again."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = out.with_name(out.name + ".work") / "checkpoints" / f"step-{step:07d}" / "complete"
    deadline = time.time() + 120
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists() and not out.exists(), "the kill must land mid-run"
    subprocess.run(command, check=True, env=env, capture_output=True)


def on_two_processes(command, env):
    """`command` (a `python -m madx.cli ...` list) under accelerate on 2 CPU processes."""
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]
    proc = subprocess.run([*launch, *command[1:]], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def without_dropout(base, tmp_path):
    """A copy of the base model without dropout, whose draws differ between one process and two by construction."""
    base = shutil.copytree(base, tmp_path / "base")
    config = json.loads((base / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (base / "config.json").write_text(json.dumps(config))
    return base


def test_killed_run_resumes_to_the_same_adapter(tiny_base, tmp_path):
    data, base = tiny_base
    corpus = data / "corpora/qad.txt"
    env = dict(os.environ, MADX_NO_PROGRESS="1")
    subprocess.run(_train_lang(base, corpus, tmp_path / "straight", 40), check=True, env=env, capture_output=True)
    # same run, SIGKILLed after its step-20 checkpoint, then started again
    out = tmp_path / "resumed"
    kill_after_checkpoint_and_rerun(_train_lang(base, corpus, out, 40, ["--save-every", "10"]), out, 20, env)
    a, b = weights(tmp_path / "straight"), weights(out)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-6)
    assert [r["step"] for r in read_log(out)] == [r["step"] for r in read_log(tmp_path / "straight")]


def test_two_process_ddp_matches_one_process(tiny_base, tmp_path):
    data, base = tiny_base
    corpus = data / "corpora/qaa.txt"
    base = without_dropout(base, tmp_path)
    env = dict(os.environ, MADX_NO_PROGRESS="1", ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1")
    subprocess.run(_train_lang(base, corpus, tmp_path / "one", 15), check=True, env=env, capture_output=True)
    on_two_processes(_train_lang(base, corpus, tmp_path / "two", 15), env)
    assert json.loads((tmp_path / "two" / "training.json").read_text())["world_size"] == 2
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert max(a[k].abs().max() for k in a if "adapter_up" in k) > 1e-3  # trained away from the zero init
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5)
    log1, log2 = read_log(tmp_path / "one"), read_log(tmp_path / "two")
    for r1, r2 in zip(log1, log2):
        assert r1["loss"] == pytest.approx(r2["loss"], rel=1e-4)


def _train_task(data, base, out, steps, extra=()):
    return [sys.executable, "-m", "madx.cli", "train-task", "--base-model", str(base), "--task", "ner", "--setup",
            "task_only", "--train", str(data / "ner/en.train.conll"), "--dev", str(data / "ner/en.dev.conll"),
            "--output", str(out), "--max-length", "48", "--max-steps", str(steps), "--batch-size", "16", "--lr",
            "5e-3", "--eval-every", "10", "--log-every", "5", *extra]


def _same_task_output(a, b):
    for name in ("adapter.safetensors", "model_head.safetensors"):
        wa, wb = load_file(str(a / name)), load_file(str(b / name))
        assert wa.keys() == wb.keys()
        for key in wa:
            torch.testing.assert_close(wb[key], wa[key], rtol=1e-4, atol=1e-5)
    ta, tb = (json.loads((d / "task.json").read_text()) for d in (a, b))
    assert (tb["best_dev_f1"], tb["best_step"]) == pytest.approx((ta["best_dev_f1"], ta["best_step"]), abs=1e-6)


def test_killed_task_training_resumes_to_the_same_task_adapter(tiny_base, tmp_path):
    """Killed after a checkpoint and run again: the same adapter, head, best dev score and step as a run that
    was never interrupted (the best weights so far live in the work directory)."""
    data, base = tiny_base
    env = dict(os.environ, MADX_NO_PROGRESS="1")
    subprocess.run(_train_task(data, base, tmp_path / "straight", 40), check=True, env=env, capture_output=True)
    out = tmp_path / "resumed"
    kill_after_checkpoint_and_rerun(_train_task(data, base, out, 40, ["--save-every", "20"]), out, 20, env)
    _same_task_output(tmp_path / "straight", out)
    assert [r["step"] for r in read_log(out)] == [r["step"] for r in read_log(tmp_path / "straight")]


def test_task_training_on_two_processes_matches_one(tiny_base, tmp_path):
    data, base = tiny_base
    base = without_dropout(base, tmp_path)
    env = dict(os.environ, MADX_NO_PROGRESS="1", ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1")
    subprocess.run(_train_task(data, base, tmp_path / "one", 20), check=True, env=env, capture_output=True)
    on_two_processes(_train_task(data, base, tmp_path / "two", 20), env)
    assert max(v.abs().max() for k, v in weights(tmp_path / "one").items() if "adapter_up" in k) > 1e-3
    _same_task_output(tmp_path / "one", tmp_path / "two")
    for r1, r2 in zip(read_log(tmp_path / "one"), read_log(tmp_path / "two")):
        assert r1["loss"] == pytest.approx(r2["loss"], rel=1e-4)


@pytest.fixture(scope="module")
def trained_task(tiny_base, tmp_path_factory):
    """A source LA and a madx task adapter trained on the tiny data."""
    data, base = tiny_base
    out = tmp_path_factory.mktemp("task")
    assert cli(["train-lang", "--base-model", str(base), "--lang", "en", "--corpus", str(data / "corpora/en.txt"),
                "--output", str(out / "la_en"), "--max-steps", "20", *LANG_ARGS]) == 0
    assert cli(["train-task", "--base-model", str(base), "--task", "ner", "--setup", "madx",
                "--lang-adapter", str(out / "la_en"), "--train", str(data / "ner/en.train.conll"),
                "--dev", str(data / "ner/en.dev.conll"), "--output", str(out / "ner"), "--max-length", "48",
                "--reduction-factor", "1", "--max-steps", "600", "--batch-size", "32", "--lr", "5e-3",
                "--eval-every", "100"]) == 0
    return data, base, out


def test_task_adapter_learns_ner(trained_task):
    _, _, out = trained_task
    task = json.loads((out / "ner" / "task.json").read_text())
    assert task["best_dev_f1"] >= 0.9
    log = read_log(out / "ner")
    assert max(r["dev_f1"] for r in log if "dev_f1" in r) == pytest.approx(task["best_dev_f1"], abs=1e-6)
    assert sorted(p.name for p in (out / "ner").iterdir()) == [
        "README.md", "adapter.safetensors", "adapter_config.json", "head_config.json", "madx_checksums.json",
        "model_head.safetensors", "task.json", "train_log.jsonl"]
    head = json.loads((out / "ner" / "head_config.json").read_text())
    assert head["label_names"][0] == "O" and "B-PER" in head["label_names"]


def test_every_adapter_directory_describes_itself_in_a_model_card(trained_task):
    """README.md beside the weights, in the Hub's layout (YAML metadata, then Markdown): what it was trained on,
    with which budget, its held-out perplexity or dev score, and how to load it in madx and AdapterHub; it is no
    input of any evaluation (a card rewritten leaves every fingerprint as it was)."""
    from madx.evaluation.fingerprints import content_digest

    _, base, out = trained_task
    task = json.loads((out / "ner" / "task.json").read_text())
    card = (out / "ner" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: adapters\ntags:\n- madx\n- adapters\n- task-adapter\n- ner\n---\n")
    assert "# ner (ner), madx setup madx" in card and f"| base model | `{base}` |" in card
    assert f"| result | {task['best_dev_f1']:.4f} f1 on the dev set at step {task['best_step']} |" in card
    assert f"over the language adapter `{out / 'la_en'}`" in card
    assert 'model.load_adapter("path/to/this/directory", use_safetensors=True, with_head=True)' in card
    record = json.loads((out / "la_en" / "training.json").read_text())
    card = (out / "la_en" / "README.md").read_text()
    assert "language:\n- en\n" in card and "# MAD-X language adapter: en" in card
    heldout = record["heldout"]
    assert (f"held-out MLM perplexity {heldout['perplexity']:.2f} with the adapter, {heldout['base_perplexity']:.2f} "
            "for the base model alone") in card
    assert f"| steps x batch | {record['settings']['max_steps']:,} x {record['settings']['batch_size']}" in card
    before = content_digest(out / "la_en")
    (out / "la_en" / "README.md").write_text(card + "\nedited by hand\n")
    assert content_digest(out / "la_en") == before
    (out / "la_en" / "README.md").write_text(card)


def test_inspect_shows_a_task_adapters_head(trained_task, capsys):
    _, _, out = trained_task
    assert cli(["inspect", str(out / "ner")]) == 0
    summary = json.loads(capsys.readouterr().out)
    head = json.loads((out / "ner" / "head_config.json").read_text())
    hidden = summary["hidden_size"]
    assert summary["name"] == "ner" and summary["checksums"] == "verified"
    assert summary["head"] == {"task_type": "ner", "head_type": "tagging", "labels": head["label_names"],
                               "weights": str(out / "ner" / "model_head.safetensors"),
                               "parameters": (hidden + 1) * len(head["label_names"])}


def test_evaluate_equals_seqeval_on_the_same_predictions(trained_task, tmp_path):
    data, base, out = trained_task
    result_file = tmp_path / "en.json"
    test = data / "ner/en.test.conll"
    assert cli(["evaluate", "--base-model", str(base), "--setup", "madx", "--task-dir", str(out / "ner"),
                "--lang-adapter", str(out / "la_en"), "--test", str(test), "--output", str(result_file),
                "--task", "ner", "--lang", "en", "--seed", "1"]) == 0
    result = json.loads(result_file.read_text())
    sentences, _ = read_labelled(test)
    labels = result and json.loads((out / "ner" / "head_config.json").read_text())["label_names"]
    model, used = build_eval_model(str(base), "madx", out / "ner", labels, out / "la_en")
    tokenizer = madx.data.hub.load_tokenizer(str(base))
    pred = predict(model, encode(tokenizer, sentences, labels, 48), labels, tokenizer.pad_token_id)
    gold = [s.tags for s in sentences]
    assert result["f1"] == pytest.approx(f1_score(gold, pred), abs=1e-12)
    assert result["n_sentences"] == len(sentences) and result["n_tokens"] == sum(map(len, gold))
    assert result["stack"] == ["en", "ner"] and result["lang_adapter"] == str(out / "la_en")
    assert set(result["per_type"]) == {"PER", "LOC", "ORG"}
    assert result["f1"] > 0.5  # the source language's own test set, with disjoint entity names


def _perturbed_copy(adapter_dir: Path, out: Path, scale: float) -> Path:
    """A copy of a language adapter with every weight scaled: another adapter, with the same name."""
    shutil.copytree(adapter_dir, out, dirs_exist_ok=True)
    tensors = {k: v * scale for k, v in weights(adapter_dir).items()}
    save_file(tensors, str(out / "adapter.safetensors"))
    (out / "madx_checksums.json").unlink()  # rewritten by hand: no checksums to hold it to
    return out


def test_one_job_evaluates_every_run_as_separate_jobs_would(trained_task, tmp_path):
    """Every (setup, seed) of a target in one process, the base model loaded once and the adapters swapped:
    each result equals the one of a model built for that run alone (exactly); a rerun keeps every finished
    result whose inputs are unchanged and recomputes exactly the run whose language adapter changed."""
    from madx.evaluation.evaluate import Run, evaluate_runs
    from madx.tasks.tagging import sequence_metrics

    data, base, out = trained_task
    test = data / "ner/qaa.test.conll"
    la_qaa = _perturbed_copy(out / "la_en", tmp_path / "la_qaa", 1.5)  # named "en" too: the second loaded is "en_2"
    each = str(tmp_path / "eval/seed{seed}/{setup}.json")
    plan = [("madx", 1, la_qaa), ("source_la", 1, out / "la_en"), ("task_only", 1, None), ("madx", 2, la_qaa)]
    runs = [Run(setup, seed, out / "ner", la, Path(each.format(setup=setup, seed=seed))) for setup, seed, la in plan]
    results = evaluate_runs(str(base), runs, test, lang="qaa", task="ner", source="en",
                            summary=tmp_path / "eval/results.json")

    sentences, _ = read_labelled(test)
    labels = json.loads((out / "ner" / "head_config.json").read_text())["label_names"]
    tokenizer = madx.data.hub.load_tokenizer(str(base))
    examples = encode(tokenizer, sentences, labels, 48)
    alone = {}
    for setup, seed, la in plan:
        model, used = build_eval_model(str(base), setup, out / "ner", labels, la)
        pred = predict(model, examples, labels, tokenizer.pad_token_id)
        alone[setup, seed] = sequence_metrics("ner", [s.tags for s in sentences], pred)
    for result in results:
        expected = alone[result["setup"], result["seed"]]
        assert {k: result[k] for k in expected} == expected, result["setup"]
    assert results[0]["stack"] == ["en", "ner"] and results[1]["stack"] == ["en_2", "ner"]
    assert results[2]["stack"] == ["ner"]
    assert results[0]["f1"] != results[1]["f1"]  # the two language adapters really differ
    summary = json.loads((tmp_path / "eval/results.json").read_text())
    assert summary["results"] == results and summary["lang"] == "qaa"

    files = {run.output: run.output.stat().st_mtime_ns for run in runs}
    evaluate_runs(str(base), runs, test, lang="qaa", task="ner", source="en")
    assert {f: f.stat().st_mtime_ns for f in files} == files  # nothing redone
    _perturbed_copy(out / "la_en", la_qaa, 0.5)  # the target's language adapter retrained
    again = evaluate_runs(str(base), runs, test, lang="qaa", task="ner", source="en")
    changed = {run.setup.name + str(run.seed) for run in runs if run.output.stat().st_mtime_ns != files[run.output]}
    assert changed == {"madx1", "madx2"}  # the runs that stack it, nothing else
    assert again[1:3] == results[1:3] and again[0]["fingerprint"] != results[0]["fingerprint"]


def test_related_languages_adapters_stand_in_for_a_target_without_one(trained_task, tmp_path):
    """madx_nearest stacks one related language's adapter (= madx with it), madx_avg the average of several: of an
    adapter and its exact copy it is that adapter (the same F1), of two different ones neither; its result names
    each averaged adapter, and changing one of them recomputes the runs that average it, nothing else."""
    from madx.evaluation.evaluate import Run, evaluate_runs

    data, base, out = trained_task
    test = data / "ner/qac.test.conll"
    same = _perturbed_copy(out / "la_en", tmp_path / "la_same", 1.0)
    other = _perturbed_copy(out / "la_en", tmp_path / "la_other", 1.5)
    each = str(tmp_path / "eval/seed{seed}/{setup}.json")
    plan = [("madx", 1, [out / "la_en"]), ("madx_avg", 1, [out / "la_en", same]), ("madx", 2, [other]),
            ("madx_nearest", 2, [other]), ("madx_avg", 2, [out / "la_en", other]),
            ("madx_emea", 2, [out / "la_en", other])]
    runs = [Run(setup, seed, out / "ner", las, Path(each.format(setup=setup, seed=seed))) for setup, seed, las in plan]
    madx1, avg_same, madx_other, nearest, avg_two, emea = evaluate_runs(str(base), runs, test, lang="qac", task="ner",
                                                                        source="en")
    assert avg_same["f1"] == madx1["f1"] and nearest["f1"] == madx_other["f1"]
    assert avg_two["f1"] not in (madx1["f1"], madx_other["f1"])
    assert avg_two["stack"] == ["Average('en', 'en_3')", "ner"] and nearest["stack"] == ["en_3", "ner"]
    assert avg_two["lang_adapters"] == [str(out / "la_en"), str(other)] and "lang_adapter" not in avg_two
    assert len(avg_two["inputs"]["lang_adapters"]) == 2 and avg_two["inputs"]["lang_adapter"] is None
    # madx_emea: the same two, their weights learned on each test batch (the paper's one step of size 10)
    assert emea["inputs"]["emea"] == {"steps": 1, "lr": 10.0} and "emea" not in avg_two["inputs"]
    assert emea["emea"]["batches"] >= 1 and set(emea["emea"]["weights"]) == {"en", "en_3"}
    assert emea["stack"] == ["Average('en', 'en_3', weights per position)", "ner"]
    files = {run.output: run.output.stat().st_mtime_ns for run in runs}
    _perturbed_copy(out / "la_en", other, 0.5)
    evaluate_runs(str(base), runs, test, lang="qac", task="ner", source="en")
    changed = {run.setup.name + str(run.seed) for run in runs if run.output.stat().st_mtime_ns != files[run.output]}
    assert changed == {"madx2", "madx_nearest2", "madx_avg2", "madx_emea2"}
    with pytest.raises(InputError, match=r"setup madx \(seed 1\) stacks one language adapter, 2 given; madx_avg "
                                         r"averages several"):
        Run("madx", 1, out / "ner", [out / "la_en", same], tmp_path / "x.json")


def test_target_ready_training_takes_the_language_adapters_in_turn(trained_task, tmp_path):
    """madx_tlr: each step's batch is trained over the next language adapter (the source's, then each target's, in
    turn; a resumed step stacks what it stacked before); dev scores over the source's; only the task adapter and
    head train, every language adapter stays as it was."""
    from madx.adapters.model import active_adapters
    from madx.commands import train_task
    from madx.tasks.families import family
    from madx.training.task import TargetReadySteps

    data, base, out = trained_task
    other = _perturbed_copy(out / "la_en", tmp_path / "la_qac", 1.5)
    model = madx.data.hub.load_task_model(str(base), family("ner").auto_class, ["O", "B-PER"])
    madx.load_adapter(model, out / "la_en")
    madx.add_adapter(model, "ner", madx.TASK_ADAPTER)
    madx.activate(model, "en", "ner")
    steps = TargetReadySteps(model, "ner", TargetReadySteps.load(model, "ner", [other, other]), lambda step: step)
    seen = []
    for step in (0, 1, 2, 3, 1):
        assert steps(step) == step
        seen.append(active_adapters(model))
    assert seen == [("en", "ner"), ("en_2", "ner"), ("en_3", "ner"), ("en", "ner"), ("en_2", "ner")]
    assert steps.on_source(lambda step: active_adapters(model))(5) == ("en", "ner")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".ner." in n or "classifier" in n for n in trainable)

    before = weights(out / "la_en"), weights(other)
    args = ["train-task", "--base-model", str(base), "--task", "ner", "--setup", "madx_tlr", "--lang-adapter",
            str(out / "la_en"), "--train", str(data / "ner/en.train.conll"), "--dev", str(data / "ner/en.dev.conll"),
            "--max-length", "48", "--max-steps", "4", "--batch-size", "8", "--eval-every", "2"]
    with pytest.raises(InputError, match=r"setup madx_tlr trains over the targets' language adapters in turn"):
        train_task._body(train_task.parser().parse_args([*args[1:], "--output", str(tmp_path / "x")]))
    assert cli([*args, "--tlr-adapters", str(other), "--output", str(tmp_path / "tlr")]) == 0
    record = json.loads((tmp_path / "tlr" / "task.json").read_text())
    assert record["setup"] == "madx_tlr" and record["tlr_adapters"] == [str(other)]
    assert record["lang_adapter"] == str(out / "la_en")
    assert all(torch.equal(a, b) for old, new in zip(before, (weights(out / "la_en"), weights(other)))
               for a, b in zip(old.values(), new.values()))
    assert sorted(p.name for p in (tmp_path / "tlr").iterdir()) == sorted(p.name for p in (out / "ner").iterdir())


def test_a_language_adapter_given_by_hub_id_evaluates_as_its_directory_and_names_its_commit(trained_task, tmp_path,
                                                                                             monkeypatch):
    """An evaluation run whose language adapter is a hub id (a cache laid out as the hub client lays it out, read
    offline): the snapshot it resolves to is evaluated, with the same result as the directory, and the result's
    inputs name the id and the commit (so a new commit is a new fingerprint)."""
    from hubcache import offline_cache, publish

    from madx.evaluation.evaluate import Run, evaluate_runs

    data, base, out = trained_task
    offline_cache(monkeypatch, tmp_path / "hub")
    commit = "c" * 40
    publish(tmp_path / "hub", "someone/la-en", out / "la_en", commit)
    test = data / "ner/qac.test.conll"
    runs = [Run("madx", 1, out / "ner", out / "la_en", tmp_path / "dir.json"),
            Run("madx", 2, out / "ner", "someone/la-en", tmp_path / "id.json")]
    by_dir, by_id = evaluate_runs(str(base), runs, test, lang="qac", task="ner", source="en")
    assert by_id["f1"] == by_dir["f1"] and by_id["inputs"]["lang_adapter"] == by_dir["inputs"]["lang_adapter"]
    assert by_id["inputs"]["hub"] == [{"id": "someone/la-en", "commit": commit}] and "hub" not in by_dir["inputs"]
    assert by_id["lang_adapter"].endswith(f"snapshots/{commit}")


def test_report_tables_and_plot(tmp_path):
    evals = tmp_path / "eval"
    scores = {("en", "madx"): [0.9, 0.92], ("en", "task_only"): [0.91, 0.93], ("xx", "madx"): [0.7, 0.8],
              ("xx", "task_only"): [0.5, 0.6]}
    for (lang, setup), values in scores.items():
        for seed, f1 in enumerate(values):
            path = evals / lang / f"seed{seed}" / f"{setup}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"task": "ner", "lang": lang, "setup": setup, "seed": seed, "task_type": "ner",
                                        "f1": f1, "precision": f1, "recall": f1, "n_sentences": 10, "n_tokens": 50}))
    assert cli(["report", "--eval", str(evals), "--output", str(tmp_path / "report"), "--source-language", "en"]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| en (source) | 91.0 ± 1.4 | **92.0 ± 1.4** |" in report
    assert "| xx | **75.0 ± 7.1** | 55.0 ± 7.1 |" in report
    assert "| avg (targets) | **75.0** | 55.0 |" in report
    assert len((tmp_path / "report" / "results.csv").read_text().splitlines()) == 9
    assert (tmp_path / "report" / "results.png").stat().st_size > 1000


def test_pos_tagging_through_the_same_path(tiny_base, tmp_path):
    """POS: token accuracy from the same train/evaluate path; the JSON equals accuracy computed directly."""
    data, base = tiny_base
    sentences, _ = read_labelled(data / "ner/en.train.conll")
    pos = lambda tag: "PROPN" if tag != "O" else "WORD"  # noqa: E731 - a toy tag set with a known answer
    for name, part in (("train", sentences[:300]), ("dev", sentences[300:])):
        (tmp_path / f"{name}.jsonl").write_text("".join(
            json.dumps({"tokens": s.tokens, "upos": [pos(t) for t in s.tags]}) + "\n" for s in part))
    out = tmp_path / "pos"
    assert cli(["train-task", "--base-model", str(base), "--task", "pos", "--task-type", "pos", "--setup", "task_only",
                "--train", str(tmp_path / "train.jsonl"), "--dev", str(tmp_path / "dev.jsonl"), "--output", str(out),
                "--max-length", "48", "--reduction-factor", "1", "--max-steps", "80", "--batch-size", "32",
                "--lr", "5e-3", "--eval-every", "40"]) == 0
    result_file = tmp_path / "pos.json"
    assert cli(["evaluate", "--base-model", str(base), "--setup", "task_only", "--task-dir", str(out),
                "--test", str(tmp_path / "dev.jsonl"), "--output", str(result_file), "--task", "pos",
                "--lang", "en"]) == 0
    result = json.loads(result_file.read_text())
    dev, _ = read_labelled(tmp_path / "dev.jsonl")
    labels = json.loads((out / "head_config.json").read_text())["label_names"]
    model, _ = build_eval_model(str(base), "task_only", out, labels)
    tokenizer = madx.data.hub.load_tokenizer(str(base))
    pred = predict(model, encode(tokenizer, dev, labels, 48), labels, tokenizer.pad_token_id)
    correct = sum(p == g for s, ps in zip(dev, pred) for p, g in zip(ps, s.tags))
    assert result["task_type"] == "pos" and "f1" not in result
    assert result["accuracy"] == pytest.approx(correct / sum(len(s.tags) for s in dev), abs=1e-12)
    assert result["accuracy"] > 0.9
