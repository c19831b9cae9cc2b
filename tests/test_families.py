"""The task families beside token classification: sentence(-pair) classification, multiple choice and extractive
QA. Readers for the hub / local layouts, QA's windows and answer reading, MLQA's metrics on cases computed by
hand, and training + evaluation through the same commands as NER (loss going down, scores recomputed)."""

import json
import random
import shutil

import pytest
import torch
import transformers

import madx
from madx.cli import main as cli
from madx.core.settings import TaskTraining
from madx.core.sources import DataError
from madx.evaluation.models import build_eval_model
from madx.tasks.classification import read_classification
from madx.tasks.families import family, predict
from madx.tasks.multiple_choice import read_multiple_choice
from madx.tasks.qa import (QAExample, answer_f1, best_spans, encode_windows, exact_match, normalize_answer,
                           qa_metrics, read_qa)
from madx.tasks.tagging import read_labelled


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


# ---- metrics, by hand


def test_answer_normalisation_as_mlqa_does_it():
    assert normalize_answer("The Eiffel Tower!", "en") == ["eiffel", "tower"]  # case, punctuation, article
    assert normalize_answer("The Eiffel Tower!", "de") == ["the", "eiffel", "tower"]  # English articles for English
    assert normalize_answer("der Turm", "de") == ["turm"]
    assert normalize_answer("«Hola», dijo", "es") == ["hola", "dijo"]  # Unicode punctuation
    assert normalize_answer("北京大学，2020", "zh") == ["北", "京", "大", "学", "2020"]  # a token per character
    assert normalize_answer("  a  b\tc ", "xx") == ["a", "b", "c"]


def test_exact_match_and_f1_by_hand():
    assert exact_match("the Eiffel tower", "Eiffel Tower.", "en") == 1.0
    assert exact_match("Eiffel", "Eiffel Tower", "en") == 0.0
    # pred {eiffel}, gold {eiffel, tower}: precision 1, recall 1/2 -> F1 2/3
    assert answer_f1("Eiffel", "the Eiffel Tower", "en") == pytest.approx(2 / 3)
    # pred 北京 (2 chars), gold 北京大学 (4 chars): P 1, R 1/2 -> 2/3
    assert answer_f1("北京", "北京大学", "zh") == pytest.approx(2 / 3)
    assert answer_f1("Paris", "London", "en") == 0.0
    examples = [QAExample("1", "q", "ctx", [("Eiffel Tower", 0), ("the tower", 0)], "x"),
                QAExample("2", "q", "ctx", [("Paris", 0)], "x", misaligned=1)]
    metrics = qa_metrics(examples, ["tower", "Paris"], "en")
    # question 1: max over the gold answers: "tower" vs "the tower" -> EM 1, F1 1; question 2: EM 1, F1 1
    assert metrics == {"exact_match": 1.0, "f1": 1.0, "n_examples": 2, "misaligned_answers": 1}
    metrics = qa_metrics(examples, ["Eiffel", "Rome"], "en")
    assert metrics["exact_match"] == 0.0 and metrics["f1"] == pytest.approx((2 / 3 + 0) / 2)


# ---- readers


def test_classification_layouts(tmp_path):
    xnli = write_jsonl(tmp_path / "xnli.jsonl", [{"premise": "A man sleeps.", "hypothesis": "A man rests.",
                                                  "label": "entailment"}])
    [ex], names = read_classification(xnli)
    assert (ex.text, ex.pair, ex.label, names) == ("A man sleeps.", "A man rests.", "entailment", None)
    pawsx = write_jsonl(tmp_path / "pawsx.jsonl", [{"sentence1": "a", "sentence2": "b", "label": 1}])
    [ex], _ = read_classification(pawsx)
    assert (ex.text, ex.pair, ex.label) == ("a", "b", "1")
    single = tmp_path / "single.json"
    single.write_text(json.dumps([{"text": "x", "label": "pos"}]))
    [ex], _ = read_classification(single)
    assert (ex.text, ex.pair, ex.where) == ("x", None, f"{single}#0")


def test_multiple_choice_layouts(tmp_path):
    copa = write_jsonl(tmp_path / "copa.jsonl", [{"premise": "The man fell.", "choice1": "He tripped.",
                                                  "choice2": "He sang.", "question": "cause", "label": 0}])
    [ex] = read_multiple_choice(copa)
    assert (ex.context, ex.choices, ex.label) == ("The man fell. cause", ["He tripped.", "He sang."], 0)
    siqa = write_jsonl(tmp_path / "siqa.jsonl", [{"context": "Kai ate.", "question": "Why?", "answerA": "hungry",
                                                  "answerB": "tired", "answerC": "bored", "label": "1"}])
    [ex] = read_multiple_choice(siqa)
    assert (ex.context, ex.choices, ex.label) == ("Kai ate. Why?", ["hungry", "tired", "bored"], 0)  # 1-based


def test_qa_layouts_and_answers_off_their_offset(tmp_path):
    squad = tmp_path / "xquad.json"  # SQuAD v1.1's nested layout, as XQuAD and MLQA ship it
    squad.write_text(json.dumps({"data": [{"paragraphs": [{"context": "Paris is in France. Paris is big.", "qas": [
        {"id": "a", "question": "Where?", "answers": [{"text": "France", "answer_start": 12}]},
        {"id": "b", "question": "What?", "answers": [{"text": "Paris", "answer_start": 3}]},  # off: nearest is 0
        {"id": "c", "question": "Who?", "answers": [{"text": "Rome", "answer_start": 0}]},  # nowhere
    ]}]}]}))
    a, b, c = read_qa(squad)
    assert (a.id, a.spans, a.misaligned) == ("a", [(12, 18)], 0)
    assert (b.spans, b.misaligned) == ([(0, 5)], 1)
    assert (c.spans, c.misaligned) == ([], 1)
    flat = write_jsonl(tmp_path / "flat.jsonl", [{"id": "x", "question": "q", "context": "abc",
                                                  "answers": {"text": ["b"], "answer_start": [1]}}])
    assert read_qa(flat)[0].spans == [(1, 2)]


@pytest.mark.parametrize("reader,record,message", [
    (read_classification, {"sentence": "x"}, r"bad.jsonl:1: no label field; expected one of \['label'\]"),
    (read_classification, {"label": "a"}, r"bad.jsonl:1: no text field; expected one of \['text', 'sentence'"),
    (read_multiple_choice, {"context": "c", "choices": ["a", "b"], "label": 2},
     r"bad.jsonl:1: label=2 must be the index of the right choice \(0..1"),
    (read_multiple_choice, {"context": "c", "choices": ["a"], "label": 0}, r"bad.jsonl:1: choices must be two or more"),
    (read_qa, {"question": "q", "context": "c"}, r"bad.jsonl:1: no 'answers' field; a QA record has id, question"),
])
def test_bad_records_name_file_line_and_field(tmp_path, reader, record, message):
    with pytest.raises(DataError, match=message):
        reader(write_jsonl(tmp_path / "bad.jsonl", [record]))


def test_a_label_outside_the_training_labels_is_an_error(tmp_path):
    fam = family("classification")
    train, _ = read_classification(write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": "x"}]))
    dev, _ = read_classification(write_jsonl(tmp_path / "dev.jsonl", [{"text": "a", "label": "x"},
                                                                        {"text": "b", "label": "y"}]))
    with pytest.raises(DataError, match=r"dev.jsonl:2: label 'y' is not in the source training labels \['x'\]"):
        fam.check(dev, fam.label_names(train, None))


# ---- QA windows and answer reading


def test_long_contexts_are_windowed_and_the_answer_token_is_found(tiny_base):
    _, base = tiny_base
    tokenizer = madx.data.hub.load_tokenizer(str(base))
    words = [f"w{i}" for i in range(60)]
    context = " ".join(words[:50] + ["Gilbo", "Kranvas"] + words[50:])
    start = context.index("Gilbo")
    [example] = read_qa_records([{"id": "1", "question": "who", "context": context,
                                  "answers": {"text": ["Gilbo Kranvas"], "answer_start": [start]}}])
    features = encode_windows(tokenizer, [example], max_length=32, doc_stride=8, train=True)
    assert len(features) > 3 and all(len(f["input_ids"]) <= 32 for f in features)
    holding = [f for f in features if f["start"] > 0]
    assert holding, "some window holds the answer"
    for f in holding:  # the answer's tokens map back to exactly its text
        assert context[f["offsets"][f["start"]][0] : f["offsets"][f["end"]][1]] == "Gilbo Kranvas"
    assert all(f["start"] == f["end"] == 0 for f in features if f not in holding)  # the others point at <s>
    # reading it back: logits that favour the answer's tokens in one window give its text
    starts = [torch.full((len(f["input_ids"]),), -5.0) for f in features]
    ends = [torch.full((len(f["input_ids"]),), -5.0) for f in features]
    f = holding[0]
    j = features.index(f)
    starts[j][f["start"]], ends[j][f["end"]] = 3.0, 3.0
    starts[j][0] = ends[j][0] = 9.0  # <s> is never an answer
    assert best_spans([example], features, starts, ends, max_answer_length=30, n_best=5) == ["Gilbo Kranvas"]
    assert best_spans([example], features, starts, ends, max_answer_length=1, n_best=5) != ["Gilbo Kranvas"]


def read_qa_records(records):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        return read_qa(write_jsonl(Path(tmp) / "qa.jsonl", records))


# ---- training and evaluation through the commands


@pytest.fixture(scope="module")
def family_data(tiny_base, tmp_path_factory):
    """The demo's classification and QA data for en (madx/demo/data.py writes them beside its NER), and multiple-choice
    data the test's tiny base can learn in a few steps: which of two words, the gap's name or another word of the
    sentence, fills the gap (the demo's fill_gap, a name of the right kind, needs a larger base: ~56% here)."""
    data, base = tiny_base
    out = tmp_path_factory.mktemp("families")
    for kind in ("classification", "qa"):
        (out / kind).mkdir()
        for split in ("train", "dev", "test"):
            shutil.copy(data / kind / f"en.{split}.jsonl", out / kind / f"en.{split}.jsonl")
    (out / "multiple_choice").mkdir()
    for split in ("train", "dev", "test"):
        rng = random.Random(split)
        records = []
        for sentence in read_labelled(data / f"ner/en.{split}.conll")[0]:
            name = next(i for i, tag in enumerate(sentence.tags) if tag.startswith("B-"))
            words = [w for w, tag in zip(sentence.tokens, sentence.tags) if tag == "O"]
            label = len(records) % 2
            choices = [sentence.tokens[name], rng.choice(words)][:: 1 - 2 * label]
            context = " ".join([*sentence.tokens[:name], "___", *sentence.tokens[name + 1:]])
            records.append({"context": context, "choices": choices, "label": label})
        write_jsonl(out / "multiple_choice" / f"en.{split}.jsonl", records)
    return out, base


def majority_baseline(task_type, examples) -> float:
    """The score of always giving the test set's most frequent answer (label, choice or answer text)."""
    if task_type == "qa":
        answers = [e.answers[0][0] for e in examples]
        top = max(set(answers), key=answers.count)
        return sum(max(answer_f1(top, g, "en") for g, _ in e.answers) for e in examples) / len(examples)
    labels = [e.label for e in examples]
    return max(labels.count(label) for label in set(labels)) / len(labels)


@pytest.mark.parametrize("task_type,steps", [("classification", 150), ("multiple_choice", 150), ("qa", 200)])
def test_each_family_trains_and_evaluates(family_data, tmp_path, task_type, steps):
    data, base = family_data
    out = tmp_path / task_type
    assert cli(["train-task", "--base-model", str(base), "--task", task_type, "--task-type", task_type,
                "--setup", "task_only", "--train", str(data / task_type / "en.train.jsonl"),
                "--dev", str(data / task_type / "en.dev.jsonl"), "--output", str(out), "--max-length", "48",
                "--doc-stride", "8", "--reduction-factor", "1", "--max-steps", str(steps), "--batch-size", "32",
                "--lr", "5e-3", "--eval-every", "50", "--log-every", "10", "--lang", "en"]) == 0
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.2, losses
    head = json.loads((out / "head_config.json").read_text())
    assert head["task_type"] == task_type

    result_file = tmp_path / "result.json"
    test = data / task_type / "en.test.jsonl"
    assert cli(["evaluate", "--base-model", str(base), "--setup", "task_only", "--task-dir", str(out), "--test",
                str(test), "--output", str(result_file), "--task", task_type, "--lang", "en"]) == 0
    result = json.loads(result_file.read_text())
    # the score recomputed by hand from a model built for this run alone
    fam = family(task_type)
    examples = fam.read(test)[0]
    settings = TaskTraining(max_length=48, doc_stride=8)
    tokenizer = madx.data.hub.load_tokenizer(str(base))
    features = fam.encode(tokenizer, examples, head["label_names"], settings, train=False)
    model, _ = build_eval_model(str(base), "task_only", out, head["label_names"], task_type=task_type)
    pred = predict(model, fam, examples, features, head["label_names"], settings, tokenizer.pad_token_id)
    if task_type == "qa":
        by_hand = sum(max(answer_f1(p, g, "en") for g, _ in e.answers) for e, p in zip(examples, pred)) / len(examples)
        assert result["f1"] == pytest.approx(by_hand, abs=1e-12) and result["windows"] == len(features)
        assert "exact_match" in result, result
        score = result["f1"]
    else:
        by_hand = sum(p == e.label for e, p in zip(examples, pred)) / len(examples)
        assert result["accuracy"] == pytest.approx(by_hand, abs=1e-12)
        score = result["accuracy"]
    # the demo's families are balanced and answerable only from the language's words: a model that always gives
    # one answer scores the majority baseline, and this one must do clearly better
    majority = majority_baseline(task_type, examples)
    assert majority < 0.6 and score > majority + 0.15, (score, majority, result)
    assert result["n_examples"] == len(examples)


def test_two_stage_training_starts_from_the_first_tasks_adapter_and_head(family_data, tmp_path):
    """init_from (the paper's XCOPA protocol: SIQA, then COPA): the second task's adapter and head start equal to
    the first's (any other weights: an error), and full_ft starts from the first task's whole model."""
    from madx.tasks.families import family as fam_of
    from madx.tasks.families import load_head
    from madx.adapters.model import adapter_modules, head_state_dict
    from madx.training.task import build_task_model

    data, base = family_data
    first = tmp_path / "first"
    for setup, out in (("task_only", first), ("full_ft", tmp_path / "first_ft")):
        assert cli(["train-task", "--base-model", str(base), "--task", "gap1", "--task-type", "multiple_choice",
                    "--setup", setup, "--train", str(data / "multiple_choice" / "en.train.jsonl"), "--dev",
                    str(data / "multiple_choice" / "en.dev.jsonl"), "--output", str(out), "--max-length", "48",
                    "--reduction-factor", "4", "--max-steps", "20", "--batch-size", "16", "--lr", "5e-3",
                    "--eval-every", "20"]) == 0
    fam = fam_of("multiple_choice")
    model = build_task_model(str(base), "gap2", "task_only", fam, [], None, madx.AdapterConfig(reduction_factor=4),
                             False, init_from=first)
    saved = build_task_model(str(base), "gap1", "task_only", fam, [], None, madx.AdapterConfig(reduction_factor=4),
                             False)
    madx.adapters.io.load_adapter(saved, first, name="loaded")
    mine = {p[: -len("gap2")]: m.state_dict() for p, m in adapter_modules(model, "gap2").items()}
    for path, module in adapter_modules(saved, "loaded").items():
        for key, value in module.state_dict().items():
            assert torch.equal(mine[path[: -len("loaded")]][key], value), (path, key)
    load_head(saved, first)
    trained_head = head_state_dict(saved)
    assert head_state_dict(model).keys() == trained_head.keys() and len(trained_head) == 4  # pooler dense, classifier
    assert all(torch.equal(head_state_dict(model)[k], v) for k, v in trained_head.items())
    assert set(madx.adapters.model.madx_state(model).configs) == {"gap2"}  # the loaded copy is gone
    full = build_task_model(str(base), "gap2", "full_ft", fam, [], None, None, False, init_from=tmp_path / "first_ft")
    reference = transformers.AutoModelForMultipleChoice.from_pretrained(tmp_path / "first_ft" / "model")
    assert all(torch.equal(a, b) for a, b in zip(full.state_dict().values(), reference.state_dict().values()))
    with pytest.raises(ValueError, match=r"init_from .*first: a multiple_choice task with labels \[\]; this task is "
                                         r"classification"):
        build_task_model(str(base), "x", "task_only", fam_of("classification"), ["a", "b"], None,
                         madx.AdapterConfig(), False, init_from=first)
    with pytest.raises(ValueError, match=r"its adapter's configuration .* is not this task's"):
        build_task_model(str(base), "gap2", "task_only", fam, [], None, madx.AdapterConfig(reduction_factor=2),
                         False, init_from=first)


def test_hub_layouts_through_datasets(tmp_path):
    """Hub rows as `datasets` loads them (a local parquet dataset read through the same hub: path): XNLI's
    ClassLabel names become the label names; SQuAD's answers column; COPA's integer labels."""
    import datasets

    features = datasets.Features({"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"])})
    (tmp_path / "xnli").mkdir()
    datasets.Dataset.from_dict({"premise": ["a", "b"], "hypothesis": ["c", "d"], "label": [2, 0]},
                               features=features).to_parquet(str(tmp_path / "xnli" / "test.parquet"))
    examples, names = read_classification(f"hub:{tmp_path / 'xnli'}?split=test")
    assert names == ["entailment", "neutral", "contradiction"]
    assert [(e.text, e.pair, e.label) for e in examples] == [("a", "c", "contradiction"), ("b", "d", "entailment")]
    assert family("classification").label_names(examples, names) == names  # the dataset's order, not sorted
    (tmp_path / "squad").mkdir()
    datasets.Dataset.from_dict({"id": ["q1"], "question": ["Where?"], "context": ["in Oslo today"],
                                "answers": [{"text": ["Oslo"], "answer_start": [3]}]}).to_parquet(
        str(tmp_path / "squad" / "validation.parquet"))
    [qa] = read_qa(f"hub:{tmp_path / 'squad'}?split=validation")
    assert (qa.id, qa.spans, qa.misaligned) == ("q1", [(3, 7)], 0)
    (tmp_path / "copa").mkdir()
    datasets.Dataset.from_dict({"premise": ["It rained."], "choice1": ["Wet."], "choice2": ["Dry."],
                                "question": ["effect"], "label": [0]}).to_parquet(str(tmp_path / "copa" / "test.parquet"))
    [mc] = read_multiple_choice(f"hub:{tmp_path / 'copa'}?split=test")
    assert (mc.context, mc.choices, mc.label) == ("It rained. effect", ["Wet.", "Dry."], 0)
