"""Metrics and the coverage warning on cases computed by hand."""

import logging

import pytest

from madx.coverage import UNK_WARNING, coverage, warn_if_badly_covered
from madx.metrics import sequence_metrics

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
    with caplog.at_level(logging.WARNING, logger="madx.coverage"):
        message = warn_if_badly_covered("xx", stats)
    assert message.startswith("xx: 14.3% of tokens are unknown to the base tokenizer")
    assert [r.getMessage() for r in caplog.records] == [message]
    caplog.clear()
    assert warn_if_badly_covered("yy", coverage(_Tokenizer("abcd"), ["ab cd"])) is None
    assert not caplog.records
