"""Calibration: are the model's probabilities honest? ECE, Brier, NLL and temperature scaling.

Temperature scaling divides the logits by one scalar ``T`` fitted to minimise NLL on the source
language's ``val`` split only (never test, never target languages), so calibrated test numbers stay
honest. ``T > 1`` softens an over-confident model; it never changes the argmax, so accuracy and F1
are unaffected.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.metrics import brier_score_loss

from babelfuse.labels import LABELS
from babelfuse.probabilities import EPS, softmax, to_logits
from babelfuse.probabilities import apply_temperature as apply_temperature  # re-exported for callers

_CLASSES = list(range(len(LABELS)))


def _normalized(probs: np.ndarray) -> np.ndarray:
    """float64 rows summing to 1: a float32 softmax is off by ~1e-7, which sklearn warns about."""
    p = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0)
    return p / p.sum(axis=1, keepdims=True)


def nll(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log-likelihood over the three classes (sklearn ``log_loss``'s number, computed
    directly: the temperature search calls it ~30 times per model and sklearn's argument checks
    cost 40 ms a call on a busy machine)."""
    y = np.asarray(y_true, dtype=np.int64)
    if not len(y):
        return float("nan")
    return float(-np.mean(np.log(_normalized(probs)[np.arange(len(y)), y])))


def brier(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Multi-class Brier score: mean over rows of sum over classes of (p - onehot)^2 (sklearn)."""
    return float(brier_score_loss(y_true, _normalized(probs), labels=_CLASSES, scale_by_half=False))


def reliability_bins(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """Equal-width confidence bins over [0, 1]: per bin its mean confidence (max prob), accuracy, count.

    A bin's right edge is inclusive only for the last bin (confidence 1.0 lands in it).
    """
    probs = np.asarray(probs)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == np.asarray(y_true)).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        rows = which == b
        count = int(rows.sum())
        bins.append(
            {
                "bin": b,
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "confidence": float(conf[rows].mean()) if count else float("nan"),
                "accuracy": float(correct[rows].mean()) if count else float("nan"),
                "count": count,
            }
        )
    return bins


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> float:
    """ECE: sum over bins of (bin share of rows) x |accuracy - mean confidence|."""
    n = len(y_true)
    if n == 0:
        return float("nan")
    return float(
        sum(
            b["count"] / n * abs(b["accuracy"] - b["confidence"])
            for b in reliability_bins(y_true, probs, n_bins)
            if b["count"]
        )
    )


def calibration_metrics(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> dict[str, float]:
    return {
        "ece": expected_calibration_error(y_true, probs, n_bins),
        "brier": brier(y_true, probs),
        "nll": nll(y_true, probs),
    }


def calibration_by_language(
    y_true: np.ndarray, probs: np.ndarray, langs: np.ndarray, n_bins: int = 10
) -> dict[str, dict[str, float]]:
    """``{"overall": {...}, lang: {ece, brier, nll}}``."""
    y_true, probs, langs = np.asarray(y_true), np.asarray(probs), np.asarray(langs)
    out = {"overall": calibration_metrics(y_true, probs, n_bins)}
    for code in sorted(set(langs.tolist())):
        rows = langs == code
        out[code] = calibration_metrics(y_true[rows], probs[rows], n_bins)
    return out


def fit_temperature(
    y_true: np.ndarray, probs: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)
) -> float:
    """The temperature minimising NLL of ``probs`` (scipy bounded scalar search over log T)."""
    logits = to_logits(probs)
    y_true = np.asarray(y_true)

    def objective(log_t: float) -> float:
        return nll(y_true, softmax(logits / np.exp(log_t)))

    result = minimize_scalar(objective, bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded")
    return float(np.exp(result.x))
