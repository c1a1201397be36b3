"""Table-driven cases of the GenEval rule engine (official rules) and of the summary."""

from __future__ import annotations

import pytest

from rtdmd_bench.rewards.geneval_rules import (
    MAX_OBJECTS,
    Detection,
    evaluate_image,
    geneval_summary,
    relative_position,
    select_detections,
)


def D(x1, y1, x2, y2, score=0.95, mask=None):
    return Detection((x1, y1, x2, y2), score, mask)


LEFT, RIGHT = D(0, 40, 20, 60), D(80, 40, 100, 60)
TOP, BOTTOM = D(40, 0, 60, 20), D(40, 80, 60, 100)


@pytest.mark.parametrize("tag,scores,kept", [
    ("single_object", [0.31, 0.3, 0.2], 1),       # strictly above 0.3
    ("counting", [0.95, 0.91, 0.9, 0.5], 2),      # counting uses 0.9
    ("two_object", [0.5] * 20, MAX_OBJECTS),       # top-k 16 per class
])
def test_thresholds_and_topk(tag, scores, kept):
    raw = {"cat": [D(0, 0, 1, 1, s) for s in scores]}
    sel = select_detections(raw, tag)
    assert len(sel.get("cat", [])) == kept
    if kept:
        assert [d.score for d in sel["cat"]] == sorted([d.score for d in sel["cat"]], reverse=True)


def test_select_sorts_by_score_and_drops_empty_classes():
    sel = select_detections({"cat": [D(0, 0, 1, 1, 0.4), D(0, 0, 1, 1, 0.8)], "dog": [D(0, 0, 1, 1, 0.1)]}, "x")
    assert [d.score for d in sel["cat"]] == [0.8, 0.4] and "dog" not in sel


@pytest.mark.parametrize("a,b,expected", [
    (LEFT, RIGHT, {"left of"}), (RIGHT, LEFT, {"right of"}), (TOP, BOTTOM, {"above"}), (BOTTOM, TOP, {"below"}),
    (D(0, 0, 20, 20), D(80, 80, 100, 100), {"left of", "above"}),       # diagonal: both relations
    (D(40, 40, 60, 60), D(42, 40, 62, 60), set()),                      # inside the 0.1*(dA+dB) dead zone
    (D(0, 0, 40, 40), D(41, 0, 81, 40), {"left of"}),                    # touching: rev 33/41 = 0.8
])
def test_relative_position(a, b, expected):
    assert relative_position(a, b) == expected


def test_dead_zone_boundary():
    # widths 20+20 -> dead zone 4 px; centre offset 5 px gives rev 1 px, dx = 1/5 = 0.2 < 0.5: no relation
    assert relative_position(D(0, 0, 20, 20), D(5, 0, 25, 20)) == set()
    # offset 50 px: rev 46, dx = 0.92 -> "left of"
    assert relative_position(D(0, 0, 20, 20), D(50, 0, 70, 20)) == {"left of"}


def _colours(mapping):
    return lambda name, dets: [mapping[id(d)] if id(d) in mapping else mapping.get(name, "red") for d in dets]


CASES = [
    # (name, detections, metadata, colour map, correct, strict)
    ("single ok", {"cat": [D(0, 0, 9, 9)]}, {"tag": "single_object", "include": [{"class": "cat", "count": 1}]},
     {}, True, True),
    ("single missing", {}, {"tag": "single_object", "include": [{"class": "cat", "count": 1}]}, {}, False, False),
    ("two objects, extra cat: official ok, strict no", {"cat": [D(0, 0, 9, 9)] * 2, "dog": [D(0, 0, 9, 9)]},
     {"tag": "two_object", "include": [{"class": "cat", "count": 1}, {"class": "dog", "count": 1}]}, {}, True, False),
    ("counting exact", {"cat": [D(0, 0, 9, 9)] * 3},
     {"tag": "counting", "include": [{"class": "cat", "count": 3}], "exclude": [{"class": "cat", "count": 4}]},
     {}, True, True),
    ("counting too many -> exclude", {"cat": [D(0, 0, 9, 9)] * 4},
     {"tag": "counting", "include": [{"class": "cat", "count": 3}], "exclude": [{"class": "cat", "count": 4}]},
     {}, False, False),
    ("counting too few", {"cat": [D(0, 0, 9, 9)] * 2},
     {"tag": "counting", "include": [{"class": "cat", "count": 3}], "exclude": [{"class": "cat", "count": 4}]},
     {}, False, False),
    ("colour right", {"cat": [D(0, 0, 9, 9)]},
     {"tag": "colors", "include": [{"class": "cat", "count": 1, "color": "red"}]}, {"cat": "red"}, True, True),
    ("colour wrong", {"cat": [D(0, 0, 9, 9)]},
     {"tag": "colors", "include": [{"class": "cat", "count": 1, "color": "blue"}]}, {"cat": "red"}, False, False),
    ("colour attr both", {"cat": [D(0, 0, 9, 9)], "dog": [D(0, 0, 9, 9)]},
     {"tag": "color_attr", "include": [{"class": "cat", "count": 1, "color": "red"},
                                       {"class": "dog", "count": 1, "color": "blue"}]},
     {"cat": "red", "dog": "blue"}, True, True),
    ("colour attr one wrong", {"cat": [D(0, 0, 9, 9)], "dog": [D(0, 0, 9, 9)]},
     {"tag": "color_attr", "include": [{"class": "cat", "count": 1, "color": "red"},
                                       {"class": "dog", "count": 1, "color": "red"}]},
     {"cat": "red", "dog": "blue"}, False, False),
    ("position ok", {"cat": [RIGHT], "dog": [LEFT]},
     {"tag": "position", "include": [{"class": "dog", "count": 1},
                                     {"class": "cat", "count": 1, "position": ["right of", 0]}]}, {}, True, True),
    ("position wrong", {"cat": [LEFT], "dog": [RIGHT]},
     {"tag": "position", "include": [{"class": "dog", "count": 1},
                                     {"class": "cat", "count": 1, "position": ["right of", 0]}]}, {}, False, False),
    ("position with unmatched target group", {"cat": [RIGHT]},
     {"tag": "position", "include": [{"class": "dog", "count": 1},
                                     {"class": "cat", "count": 1, "position": ["right of", 0]}]}, {}, False, False),
    ("position only checks top-count objects", {"cat": [D(80, 40, 100, 60, 0.99), D(0, 40, 5, 60, 0.5)],
                                                "dog": [D(30, 40, 50, 60)]},
     {"tag": "position", "include": [{"class": "dog", "count": 1},
                                     {"class": "cat", "count": 1, "position": ["right of", 0]}]}, {}, True, False),
]


@pytest.mark.parametrize("name,dets,meta,colours,correct,strict", CASES, ids=[c[0] for c in CASES])
def test_rules(name, dets, meta, colours, correct, strict):
    v = evaluate_image(dets, meta, _colours(colours))
    assert (v.correct, v.strict, v.tag) == (correct, strict, meta["tag"])
    assert (v.reason == "") == correct


def test_colour_majority_needs_count_hits():
    dets = {"cat": [D(0, 0, 9, 9, 0.99), D(0, 0, 9, 9, 0.98), D(0, 0, 9, 9, 0.97)]}
    by_rank = ["red", "blue", "red"]

    def classify(name, found):
        return by_rank[: len(found)]

    meta2 = {"tag": "colors", "include": [{"class": "cat", "count": 2, "color": "red"}]}
    v = evaluate_image(dets, meta2, classify)  # only the top-2 are classified: red, blue -> 1 < 2
    assert not v.correct and "found 1 red" in v.reason
    meta1 = {"tag": "colors", "include": [{"class": "cat", "count": 1, "color": "red"}]}
    assert evaluate_image(dets, meta1, classify).correct


def test_colour_clause_without_classifier_is_an_error():
    with pytest.raises(ValueError, match="colour classifier"):
        evaluate_image({"cat": [D(0, 0, 1, 1)]}, {"tag": "colors", "include": [{"class": "cat", "count": 1,
                                                                                  "color": "red"}]})


def test_summary_macro_vs_micro_and_prompt_level():
    records = (
        [{"tag": "single_object", "correct": 1, "strict": 1, "prompt_id": f"s{i}"} for i in range(8)]
        + [{"tag": "counting", "correct": int(i == 0), "strict": 0, "prompt_id": f"c{i // 2}"} for i in range(2)]
    )
    s = geneval_summary(records)
    assert s["per_tag"] == {"single_object": 1.0, "counting": 0.5}
    assert s["overall"] == pytest.approx(0.75)          # macro over tags
    assert s["image_accuracy"] == pytest.approx(0.9)    # micro over images
    assert s["prompt_accuracy"] == pytest.approx(1.0)   # 9 prompts, each with >= 1 correct image
    assert s["strict_image_accuracy"] == pytest.approx(0.8)
    assert s["n_prompts"] == 9 and "position" in s["missing_tags"] and set(s["labels"]) >= {"overall"}
    with pytest.raises(ValueError):
        geneval_summary([])
