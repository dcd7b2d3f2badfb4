"""The promotion decision as a pure function, both ways, and the scores it is fed."""

from __future__ import annotations

import math

import pytest
from sklearn.metrics import f1_score

from babelfuse.serving.gate import decide, scores


def s(overall: float, **langs: float) -> dict:
    return {"macro_f1": overall, "per_language": langs}


def test_first_model_is_promoted() -> None:
    d = decide(s(0.4, en=0.4), None, margin=0.0, tolerance=0.05)
    assert d.promote and d.decision == "promote" and "first model" in d.reason
    assert d.champion_macro_f1 is None and d.worst_drop is None


def test_better_everywhere_is_promoted() -> None:
    d = decide(s(0.80, en=0.85, de=0.75), s(0.70, en=0.80, de=0.60), margin=0.05, tolerance=0.05)
    assert d.promote and d.decision == "promote"
    assert d.improvement == pytest.approx(0.10)
    assert d.worst_language == "en" and d.worst_drop == pytest.approx(-0.05)
    assert d.per_language_delta == pytest.approx({"en": 0.05, "de": 0.15})


def test_better_on_average_but_one_language_drops_beyond_tolerance_is_refused() -> None:
    d = decide(
        s(0.80, en=0.95, de=0.95, ja=0.50), s(0.70, en=0.70, de=0.70, ja=0.70), margin=0.0, tolerance=0.05
    )
    assert not d.promote and d.decision == "refuse"
    assert d.worst_language == "ja" and d.worst_drop == pytest.approx(0.20)
    assert "ja drops by 0.2000" in d.reason and "tolerance 0.05" in d.reason


def test_a_drop_within_tolerance_is_allowed() -> None:
    d = decide(s(0.75, en=0.90, ja=0.66), s(0.70, en=0.70, ja=0.70), margin=0.0, tolerance=0.05)
    assert d.promote and d.worst_drop == pytest.approx(0.04)


def test_not_enough_improvement_is_refused_and_ties_meet_the_margin() -> None:
    refused = decide(s(0.71, en=0.71), s(0.70, en=0.70), margin=0.02, tolerance=0.05)
    assert not refused.promote and "< margin 0.02" in refused.reason
    tie = decide(s(0.70, en=0.70), s(0.70, en=0.70), margin=0.0, tolerance=0.0)
    assert tie.promote


def test_both_failures_are_reported_together() -> None:
    d = decide(s(0.60, en=0.9, de=0.3), s(0.70, en=0.7, de=0.7), margin=0.0, tolerance=0.05)
    assert not d.promote and "margin" in d.reason and "de drops" in d.reason


def test_a_language_the_challenger_was_not_scored_on_is_refused() -> None:
    d = decide(s(0.9, en=0.9), s(0.7, en=0.7, de=0.7), margin=0.0, tolerance=0.05)
    assert not d.promote and "['de']" in d.reason


def test_scores_match_sklearn_and_unanswered_rows_count_as_wrong() -> None:
    truth = ["negative", "neutral", "positive", "positive", "negative", "neutral"]
    pred = ["negative", "neutral", "negative", "positive", None, "neutral"]
    langs = ["en", "en", "en", "de", "de", "de"]
    got = scores(truth, pred, langs)
    code = {"negative": 0, "neutral": 1, "positive": 2}
    t = [code[x] for x in truth]
    p = [code.get(x, -1) if x else -1 for x in pred]
    assert got["macro_f1"] == pytest.approx(
        f1_score(t, p, labels=[0, 1, 2], average="macro", zero_division=0)
    )
    assert got["per_language"]["en"] == pytest.approx(
        f1_score(t[:3], p[:3], labels=[0, 1, 2], average="macro", zero_division=0)
    )
    assert got["unanswered"] == 1 and got["n"] == 6
    assert not math.isnan(got["per_language"]["de"])
