"""Evaluation metrics against scikit-learn on a small fixed example, ECE by hand, the transfer summary."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, brier_score_loss, confusion_matrix, f1_score, log_loss

from babelfuse.evaluation import calibration, metrics

# 10 posts, two languages; argmax predictions = [0, 1, 2, 1, 1, 0, 2, 2, 0, 2]
Y = np.array([0, 1, 2, 2, 1, 0, 0, 2, 1, 2])
P = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.1, 0.8, 0.1],
        [0.2, 0.2, 0.6],
        [0.3, 0.5, 0.2],
        [0.2, 0.6, 0.2],
        [0.5, 0.3, 0.2],
        [0.1, 0.3, 0.6],
        [0.1, 0.1, 0.8],
        [0.4, 0.35, 0.25],
        [0.05, 0.15, 0.8],
    ]
)
LANGS = np.array(["en"] * 5 + ["de"] * 5)


def test_accuracy_f1_confusion_match_sklearn():
    pred = P.argmax(1)
    assert metrics.accuracy(Y, pred) == pytest.approx(accuracy_score(Y, pred)) == pytest.approx(0.7)
    assert metrics.macro_f1(Y, pred) == pytest.approx(f1_score(Y, pred, average="macro"))
    cms = metrics.confusion_matrices(Y, P, LANGS)
    np.testing.assert_array_equal(cms["overall"], confusion_matrix(Y, pred))
    en = LANGS == "en"
    np.testing.assert_array_equal(cms["en"], confusion_matrix(Y[en], pred[en], labels=[0, 1, 2]))
    assert cms["overall"].sum() == 10 and cms["de"].sum() == 5


def test_brier_and_nll_match_sklearn():
    onehot = np.eye(3)[Y]
    per_class = sum(brier_score_loss(onehot[:, k], P[:, k]) for k in range(3))
    assert calibration.brier(Y, P) == pytest.approx(per_class)
    assert calibration.brier(Y, P) == pytest.approx(np.mean(np.sum((P - onehot) ** 2, axis=1)))
    assert calibration.nll(Y, P) == pytest.approx(log_loss(Y, P))
    # a subset lacking one class still uses all three (multi-class Brier, not the binary form)
    sub = Y != 1
    assert calibration.brier(Y[sub], P[sub]) == pytest.approx(
        np.mean(np.sum((P[sub] - onehot[sub]) ** 2, axis=1))
    )


def test_ece_hand_computed():
    probs = np.array([[0.85, 0.1, 0.05], [0.75, 0.15, 0.1], [0.1, 0.6, 0.3], [0.2, 0.25, 0.55]])
    y = np.array([0, 1, 1, 0])  # correct, wrong, correct, wrong
    # bins (0.8,0.9]: conf .85 acc 1; (0.7,0.8]: conf .75 acc 0; (0.5,0.6]: conf .575 acc .5
    expected = 0.25 * 0.15 + 0.25 * 0.75 + 0.5 * 0.075
    assert calibration.expected_calibration_error(y, probs, n_bins=10) == pytest.approx(expected)
    bins = calibration.reliability_bins(y, probs, n_bins=10)
    assert [b["count"] for b in bins] == [0, 0, 0, 0, 0, 2, 0, 1, 1, 0]
    # perfectly calibrated one-hot predictions have ECE 0; confidence 1.0 lands in the last bin
    assert calibration.expected_calibration_error(y, np.eye(3)[y], n_bins=10) == pytest.approx(0.0)
    assert calibration.reliability_bins(y, np.eye(3)[y], 10)[-1]["count"] == 4


def test_transfer_summary():
    per = {"en": {"macro_f1": 0.9}, "de": {"macro_f1": 0.7}, "fr": {"macro_f1": 0.5}}
    out = metrics.transfer_summary(per, ["en"])
    assert out["source_macro_f1"] == pytest.approx(0.9)
    assert out["target_macro_f1"] == pytest.approx(0.6)
    assert out["transfer_gap"] == pytest.approx(0.3)
    assert out["worst_language"] == "fr"
