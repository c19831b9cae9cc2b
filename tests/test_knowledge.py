"""The knowledge tasks' data and metrics (madx/tasks/knowledge.py) on cases worked out by hand, and bad input
naming file and line."""

import json

import pytest

from madx.core.sources import DataError
from madx.tasks.knowledge import attachment_scores, read_conllu, read_relations, relation_scores

TREEBANK = """# sent_id = 1
# text = The dog barks.
1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_
2\tdog\tdog\tNOUN\t_\t_\t3\tnsubj\t_\t_
3\tbarks\tbark\tVERB\t_\t_\t0\troot\t_\t_
4\t.\t.\tPUNCT\t_\t_\t3\tpunct\t_\t_

1-2\tdel\t_\t_\t_\t_\t_\t_\t_\t_
1\tde\tde\tADP\t_\t_\t2\tcase\t_\t_
2\tel\tel\tDET\t_\t_\t0\troot\t_\t_
2.1\tgone\t_\t_\t_\t_\t_\t_\t_\t_
"""


def test_a_treebank_reads_words_heads_and_relations(tmp_path):
    path = tmp_path / "t.conllu"
    path.write_text(TREEBANK)
    first, second = read_conllu(path)
    assert (first.words, first.heads, first.relations) == (["The", "dog", "barks", "."], [2, 3, 0, 3],
                                                            ["det", "nsubj", "root", "punct"])
    assert first.where == f"{path}:3"
    assert (second.words, second.heads) == (["de", "el"], [2, 0])  # the multi-word token and empty node skipped
    # 6 words; heads right for The, barks, ., de: UAS 4/6; with their relations too for The, barks, de: LAS 3/6
    scores = attachment_scores([first, second], [[2, 1, 0, 3], [2, 1]],
                               [["det", "nsubj", "root", "obj"], ["case", "root"]])
    assert scores == {"uas": 4 / 6, "words": 6, "las": 3 / 6}


@pytest.mark.parametrize("line, message", [
    ("3\tbarks\tbark\tVERB\t_\t_\t7\troot\t_\t_", r"t.conllu:5: head 7 of word 3 is outside its sentence \(0 for "
                                                  r"the root, else 1..4\)"),
    ("3\tbarks\tbark\tVERB\t_\t_\tx\troot\t_\t_", r"t.conllu:5: HEAD 'x' is not a word index"),
    ("5\tbarks\tbark\tVERB\t_\t_\t0\troot\t_\t_", r"t.conllu:5: word ID '5', expected 3"),
    ("3\tbarks\tbark\tVERB\t0\troot", r"t.conllu:5: 6 tab-separated columns, CoNLL-U has 10"),
])
def test_a_bad_treebank_line_is_named(tmp_path, line, message):
    lines = TREEBANK.splitlines()
    lines[4] = line
    path = tmp_path / "t.conllu"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=message):
        read_conllu(path)


def test_relations_read_their_spans_and_score_by_hand(tmp_path):
    path = tmp_path / "r.jsonl"
    rows = [{"text": "Paris is in France", "subject": [0, 5], "object": [12, 18], "relation": "located_in"},
            {"text": "Ada wrote notes", "subject": [0, 3], "object": [10, 15], "relation": "author_of"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    first, second = read_relations(path)
    assert first.text[slice(*first.subject)] == "Paris" and first.text[slice(*first.object)] == "France"
    assert second.where == f"{path}:2"
    # gold a a b b, predicted a b b b: accuracy 3/4; F1 a = 2*1*0.5/1.5 = 2/3, b = 2*(2/3)*1/(5/3) = 0.8
    scores = relation_scores(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert scores["accuracy"] == 0.75 and scores["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    rows[1]["object"] = [10, 99]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(DataError, match=r"r.jsonl:2: object \[10, 99\] is not a span of the text: .* <= 15"):
        read_relations(path)
    path.write_text(json.dumps({"text": "x", "subject": [0, 1]}) + "\n")
    with pytest.raises(DataError, match=r"r.jsonl:1: no 'object' field"):
        read_relations(path)
