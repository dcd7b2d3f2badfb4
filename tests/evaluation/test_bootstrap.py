"""The group bootstrap: same numbers as sklearn, whole meanings resampled, paired differences, coverage."""

from __future__ import annotations

import numpy as np
import pytest

from babelfuse.evaluation import bootstrap as bs
from babelfuse.evaluation.calibration import expected_calibration_error
from babelfuse.evaluation.metrics import accuracy, macro_f1


def _preds(n: int, seed: int, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 3, n), rng.integers(0, classes, n)


@pytest.mark.parametrize("classes", [3, 2])  # 2: one class never predicted
def test_weighted_metrics_with_unit_weights_equal_sklearn(classes: int) -> None:
    y, p = _preds(200, classes, classes)
    assert bs.point(bs.weighted_macro_f1, (y, p), 200) == pytest.approx(macro_f1(y, p), abs=1e-12)
    assert bs.point(bs.weighted_accuracy, (y, p), 200) == pytest.approx(accuracy(y, p), abs=1e-12)
    rows = np.arange(200) % 4 == 0
    assert bs.point(bs.weighted_macro_f1, (y, p, rows), 200) == pytest.approx(macro_f1(y[rows], p[rows]))


def test_weighted_ece_with_unit_weights_equals_calibration_module() -> None:
    rng = np.random.default_rng(3)
    probs = rng.dirichlet([1, 1, 1], size=300)
    y = rng.integers(0, 3, 300)
    assert bs.point(bs.ece_metric(10), (y, probs), 300) == pytest.approx(
        expected_calibration_error(y, probs, 10), abs=1e-12
    )


def test_a_resample_equals_the_metric_on_the_repeated_rows() -> None:
    y, p = _preds(90, 1)
    groups = np.repeat(np.arange(30), 3)
    draws = bs.draw_weights(groups, 5, seed=7)
    for w, idx in zip(draws, bs.group_indices(groups, 5, seed=7), strict=True):
        assert bs.weighted_macro_f1(w[None], (y, p))[0] == pytest.approx(macro_f1(y[idx], p[idx]))


def test_translations_of_one_meaning_are_drawn_together() -> None:
    groups = np.array([5, 5, 5, 9, 9, 9, 2, 2, 2, 7])  # three meanings in 3 languages, one alone
    draws = bs.draw_weights(groups, 200, seed=0)
    for g in np.unique(groups):
        cols = draws[:, groups == g]
        assert (cols == cols[:, :1]).all()
    assert (draws[:, [0, 3, 6, 9]].sum(axis=1) == 4).all()  # as many groups drawn as there are
    np.testing.assert_array_equal(draws, bs.draw_weights(groups, 200, seed=0))
    assert not np.array_equal(draws, bs.draw_weights(groups, 200, seed=1))


def test_group_ids_prefer_group_then_template_and_unknown_rows_stand_alone() -> None:
    split = {"label": np.zeros(4), "template_id": np.array([3, 3, -1, -1])}
    ids = bs.group_ids(split)
    assert ids[0] == ids[1] and len(set(ids.tolist())) == 3
    assert (bs.group_ids({**split, "group": np.array([1, 2, 1, 2])}) == [1, 2, 1, 2]).all()
    assert len(set(bs.group_ids({"label": np.zeros(4)}).tolist())) == 4


def test_difference_of_identical_models_is_exactly_zero() -> None:
    y, p = _preds(120, 2)
    draws = bs.draw_weights(np.repeat(np.arange(40), 3), 300, seed=4)
    d = bs.paired_ci(bs.weighted_macro_f1, (y, p), (y, p.copy()), draws, 0.95)
    assert (d["diff"], d["ci_low"], d["ci_high"], d["resolved"]) == (0.0, 0.0, 0.0, False)


def test_paired_interval_is_narrower_than_the_two_intervals_when_models_agree_mostly() -> None:
    rng = np.random.default_rng(5)
    y, p = _preds(400, 5)
    q = np.where(rng.random(400) < 0.05, (p + 1) % 3, p)  # b differs from a on 5 % of rows
    draws = bs.draw_weights(np.arange(400), 500, seed=6)
    a, b = bs.ci(bs.weighted_macro_f1, (y, p), draws, 0.95), bs.ci(bs.weighted_macro_f1, (y, q), draws, 0.95)
    d = bs.paired_ci(bs.weighted_macro_f1, (y, p), (y, q), draws, 0.95)
    assert d["ci_high"] - d["ci_low"] < 0.5 * min(a["ci_high"] - a["ci_low"], b["ci_high"] - b["ci_low"])


def _coverage(group_size: int, as_rows: bool, replicates: int = 150) -> float:
    """Share of replicate datasets whose 95 % interval holds the true accuracy 0.7.

    Each meaning is right or wrong in all its translations at once (shared content), as on the
    bundled data: the rows are not independent, their groups are.
    """
    rng = np.random.default_rng(11)
    n_groups, hits = 60, 0
    groups = np.repeat(np.arange(n_groups), group_size)
    units = np.arange(len(groups)) if as_rows else groups
    for r in range(replicates):
        right = np.repeat(rng.random(n_groups) < 0.7, group_size)
        y = np.zeros(len(groups), dtype=int)
        pred = np.where(right, 0, 1)
        draws = bs.draw_weights(units, 300, seed=r)
        c = bs.ci(bs.weighted_accuracy, (y, pred), draws, 0.95)
        hits += c["ci_low"] <= 0.7 <= c["ci_high"]
    return hits / replicates


def test_group_bootstrap_covers_where_a_row_bootstrap_does_not() -> None:
    assert 0.88 <= _coverage(8, as_rows=False) <= 0.99
    assert _coverage(8, as_rows=True) < 0.75  # rows treated as independent: far too narrow


def test_an_empty_language_in_a_resample_is_left_out_not_zero() -> None:
    y, p = np.array([0, 1, 2, 0]), np.array([0, 1, 2, 1])
    rows = np.array([True, False, False, False])
    draws = np.array([[1.0, 1, 1, 1], [0.0, 2, 1, 1]])  # the second resample has no row of `rows`
    assert np.isnan(bs.weighted_macro_f1(draws, (y, p, rows))[1])
    c = bs.ci(bs.weighted_macro_f1, (y, p, rows), draws, 0.95)
    assert c["ci_low"] == c["ci_high"] == 1.0


def test_group_level_draw_equals_its_dense_row_weights() -> None:
    y, p = _preds(96, 9)
    rows = np.arange(96) < 40
    d = bs.draw(np.repeat(np.arange(12), 8), 50, seed=2)
    dense = d.dense()
    for fn, data in ((bs.weighted_macro_f1, (y, p, rows)), (bs.weighted_accuracy, (y, p)),
                     (bs.ece_metric(5), (y, np.eye(3)[p] * 0.5 + 0.5 / 3, rows))):  # fmt: skip
        np.testing.assert_allclose(fn(d, data), fn(dense, data))
