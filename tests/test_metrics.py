"""Metrics and the coverage warning on cases computed by hand."""

import logging

import pytest

from madx.data.coverage import UNK_WARNING, coverage, warn_if_badly_covered
from madx.tasks.tagging import sequence_metrics

GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
PRED = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "O", "B-LOC"]]


def test_entity_scores_by_hand():
    """Gold entities: PER, LOC (sentence 1), ORG, PER (sentence 2): 4. Predicted: PER, ORG (right), LOC (wrong
    type): 3. So P = 2/3, R = 2/4, F1 = 2PR/(P+R) = 4/7; per type PER 1 of 2 found (P 1, R 1/2, F1 2/3), LOC 0 of 1,
    ORG 1 of 1."""
    m = sequence_metrics("ner", GOLD, PRED)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(1 / 2)
    assert m["f1"] == pytest.approx(4 / 7)
    assert m["per_type"] == {"PER": {"f1": pytest.approx(2 / 3), "support": 2},
                             "LOC": {"f1": 0.0, "support": 1}, "ORG": {"f1": 1.0, "support": 1}}
    assert (m["n_sentences"], m["n_tokens"]) == (2, 7)


def test_an_entity_counts_only_with_its_whole_span():
    # a person predicted one token short is wrong, not half right
    m = sequence_metrics("ner", [["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)


def test_pos_accuracy_by_hand():
    m = sequence_metrics("pos", [["DET", "NOUN"], ["VERB"]], [["DET", "VERB"], ["VERB"]])
    assert m["accuracy"] == pytest.approx(2 / 3) and m["n_tokens"] == 3


class _Tokenizer:
    """Characters as tokens; any character outside `known` is unknown (id 0)."""

    unk_token_id = 0

    def __init__(self, known: str):
        self.known = known

    def __call__(self, line, add_special_tokens=False):
        return {"input_ids": [0 if ch not in self.known else 1 for ch in line.replace(" ", "")]}


def test_coverage_by_hand_and_its_warning(caplog):
    stats = coverage(_Tokenizer("abc"), ["ab cd", "abc"])  # 7 tokens, 1 unknown ('d'); 3 words
    assert stats["unk_rate"] == pytest.approx(1 / 7) and stats["subwords_per_word"] == pytest.approx(7 / 3)
    assert stats["unk_rate"] > UNK_WARNING
    with caplog.at_level(logging.WARNING, logger="madx.data.coverage"):
        message = warn_if_badly_covered("xx", stats)
    assert message.startswith("xx: 14.3% of tokens are unknown to the base tokenizer")
    assert [r.getMessage() for r in caplog.records] == [message]
    caplog.clear()
    assert warn_if_badly_covered("yy", coverage(_Tokenizer("abcd"), ["ab cd"])) is None
    assert not caplog.records


# ---- per-class scores, confusion and trivial baselines, on cases computed by hand


def _texts(labels):
    from madx.tasks.classification import TextExample

    return [TextExample(f"text {i}", None, label, f"test.jsonl:{i + 1}") for i, label in enumerate(labels)]


def test_per_class_scores_and_confusion_by_hand():
    """gold a a a b b c, predicted a a b b c c (labels a b c d): rows gold, columns predicted:
    a [2 1 0 0], b [0 1 1 0], c [0 0 1 0], d [0 0 0 0]. a: P 2/2, R 2/3, F1 0.8; b: P 1/2, R 1/2; c: P 1/2, R 1,
    F1 2/3; d (never gold, never predicted): 0."""
    from madx.tasks.families import family

    fam = family("classification")
    examples = _texts(["a", "a", "a", "b", "b", "c"])
    out = fam.breakdown(examples, ["a", "a", "b", "b", "c", "c"], ["a", "b", "c", "d"])
    assert out["confusion"] == {"labels": ["a", "b", "c", "d"],
                                "matrix": [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]}
    assert out["per_class"]["a"] == {"precision": 1.0, "recall": pytest.approx(2 / 3), "f1": pytest.approx(0.8),
                                     "support": 3}
    assert out["per_class"]["b"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert out["per_class"]["c"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert out["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert fam.baselines(examples, ["a", "b", "c", "d"], "en") == {"majority": 0.5, "chance": 0.25}
    assert fam.warnings(examples, ["a", "a", "b", "b", "c", "c"]) == []
    [warning] = fam.warnings(examples, ["a"] * 6)
    assert "every example is predicted 'a'" in warning and "3 different values" in warning
    assert fam.warnings(_texts(["a", "a"]), ["a", "a"]) == []  # one gold class: predicting it is right


def test_multiple_choice_per_choice_scores_and_baselines():
    from madx.tasks.families import family
    from madx.tasks.multiple_choice import ChoiceExample

    fam = family("multiple_choice")
    examples = [ChoiceExample("c", ["x", "y"], label, f"mc:{i}") for i, label in enumerate([0, 1, 1, 1])]
    assert fam.baselines(examples, [], "en") == {"majority": 0.75, "chance": 0.5}
    out = fam.breakdown(examples, [1, 1, 1, 1], [])
    assert out["confusion"] == {"labels": ["0", "1"], "matrix": [[0, 1], [0, 3]]}
    assert out["per_class"]["1"] == {"precision": 0.75, "recall": 1.0, "f1": pytest.approx(6 / 7), "support": 3}
    assert fam.warnings(examples, [1, 1, 1, 1])  # collapsed onto the second choice


def test_sequence_baselines_by_hand():
    from madx.tasks.families import family
    from madx.tasks.tagging import Sentence

    def sentences(tag_lists):
        return [Sentence([f"w{i}" for i in range(len(tags))], tags, "test.conll") for tags in tag_lists]

    ner = family("ner")
    assert ner.baselines(sentences([["O", "B-PER", "O"]]), ["O", "B-PER", "I-PER"], "en")["majority"] == 0.0  # all O
    # most frequent tag B-PER: 3 one-word persons predicted, 2 gold: P 2/3, R 1, F1 0.8; with B-PER the only label,
    # random tags are that tag too: chance = majority
    gold = sentences([["B-PER", "B-PER", "O"]])
    assert ner.baselines(gold, ["B-PER"], "en") == {"majority": pytest.approx(0.8), "chance": pytest.approx(0.8)}
    mixed = sentences([["B-PER", "I-PER", "O", "B-LOC", "O"]] * 20)
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    chance = ner.baselines(mixed, labels, "en")["chance"]
    assert 0.0 < chance < 0.5 and ner.baselines(mixed, labels, "en")["chance"] == chance  # seeded: the same again
    # where majority (all "O") is 0, chance is the floor a model must beat: a one-word person in every third word,
    # random tags O or B-PER find half of them among half the words tagged: P 1/3, R 1/2, F1 0.4
    persons = sentences([["O", "O", "B-PER"]] * 1000)
    assert ner.baselines(persons, ["O", "B-PER"], "en") == {"majority": 0.0, "chance": pytest.approx(0.4, abs=0.01)}
    pos = family("pos")
    assert pos.baselines(sentences([["DET", "NOUN", "NOUN"], ["VERB"]]), ["DET", "NOUN", "VERB"], "en") == {
        "majority": 0.5, "chance": pytest.approx(1 / 3)}
    [warning] = ner.warnings(mixed, [["O"] * 5] * 20)
    assert "every word is predicted 'O'" in warning


def test_qa_baselines_by_hand():
    """Answers Oslo, Oslo, Anna: always "Oslo" scores F1 1, 1, 0 (2/3). Each context is its one-word answer, so a
    random span of the mean answer length (1 word) is the answer: chance F1 1."""
    from madx.tasks.families import family
    from madx.tasks.qa import QAExample

    examples = [QAExample(str(i), "q?", answer, [(answer, 0)], f"qa:{i}") for i, answer in
                enumerate(["Oslo", "Oslo", "Anna"])]
    qa = family("qa")
    assert qa.baselines(examples, [], "en") == {"majority": pytest.approx(2 / 3), "chance": 1.0}
    longer = [QAExample("1", "q?", "Anna sang in Oslo last night", [("Oslo", 13)], "qa:1")]
    # a one-word span of six words, drawn at 3, 3, 0, 2, 4 (random.Random(BASELINE_SEED)): "Oslo" twice, F1 2/5
    assert qa.baselines(longer, [], "en")["chance"] == pytest.approx(2 / 5)
    assert qa.warnings(examples, ["Oslo"] * 3)
