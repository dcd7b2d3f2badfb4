"""Temperature scaling: fitted on (synthetic) val, it must fix over-confidence without moving the argmax."""

from __future__ import annotations

import numpy as np
import pytest

from babelfuse.evaluation import calibration


def _overconfident(n: int, seed: int, sharpen: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z); the "model" reports softmax(sharpen * z): right ranking, too sure."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.2, size=(n, 3))
    true_p = calibration.softmax(z)
    y = np.array([rng.choice(3, p=p) for p in true_p])
    return y, calibration.softmax(sharpen * z)


def test_temperature_lowers_nll_and_is_above_one_for_overconfident_model():
    y_val, p_val = _overconfident(800, 0)
    t = calibration.fit_temperature(y_val, p_val)
    assert t > 1.5  # the truth is T = 3
    before = calibration.nll(y_val, p_val)
    after = calibration.nll(y_val, calibration.apply_temperature(p_val, t))
    assert after < before - 0.05
    # it generalises to fresh data from the same model and improves ECE there
    y_test, p_test = _overconfident(800, 1)
    scaled = calibration.apply_temperature(p_test, t)
    assert calibration.nll(y_test, scaled) < calibration.nll(y_test, p_test)
    assert calibration.expected_calibration_error(y_test, scaled) < calibration.expected_calibration_error(
        y_test, p_test
    )
    np.testing.assert_array_equal(scaled.argmax(1), p_test.argmax(1))


def test_apply_temperature_one_is_identity_and_rows_sum_to_one():
    _, p = _overconfident(50, 2, sharpen=1.0)
    np.testing.assert_allclose(calibration.apply_temperature(p, 1.0), p, atol=1e-9)
    np.testing.assert_allclose(calibration.apply_temperature(p, 2.5).sum(1), 1.0)


def test_calibration_by_language_has_every_language():
    y, p = _overconfident(60, 3)
    langs = np.array(["en", "de", "ja"] * 20)
    out = calibration.calibration_by_language(y, p, langs, n_bins=5)
    assert set(out) == {"overall", "en", "de", "ja"}
    assert out["de"]["nll"] == pytest.approx(calibration.nll(y[langs == "de"], p[langs == "de"]))
