"""The group bootstrap: resample meanings (a sentence with all its translations), one draw for everything.

The translations of one meaning share their label and their content, so rows are not independent:
resampling rows would give intervals that are too narrow. A *group* is a meaning (``template_id``);
rows with no known group (``-1``) are their own group. One draw of groups is a row-weight matrix
``weights[b, i]`` = how often row ``i``'s group was drawn in resample ``b``. The same matrix serves
every model and every language, so any two numbers computed from it are *paired*: the interval of
their difference (source vs a target language, fused vs a baseline, ECE before vs after scaling)
accounts for their correlation.

Metrics are computed for all resamples at once from weighted confusion counts (a matrix product per
cell), so 1,000 resamples of a dozen models in nine groups of languages take well under a second.
``weighted_macro_f1`` with all-ones weights is exactly :func:`babelfuse.evaluation.metrics.macro_f1`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from babelfuse.labels import LABELS

K = len(LABELS)
WeightedMetric = Callable[[np.ndarray, Any], np.ndarray]  # (weights (B, n), data) -> (B,) values


def group_ids(split: dict[str, np.ndarray]) -> np.ndarray:
    """Group id per row: ``group`` if the split has it, else ``template_id``; unknown (< 0) = own group."""
    key = "group" if "group" in split else "template_id" if "template_id" in split else None
    n = len(split["label"])
    if key is None:
        return np.arange(n, dtype=np.int64)
    ids = np.asarray(split[key]).astype(np.int64)
    own = -(np.arange(n, dtype=np.int64) + 1)  # negative: never collides with a real template id
    return np.where(ids >= 0, ids, own)


def draw_weights(groups: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``(n, rows)`` row weights: each resample draws as many groups as there are, with replacement."""
    _, inverse = np.unique(np.asarray(groups), return_inverse=True)
    n_groups = int(inverse.max()) + 1 if len(inverse) else 0
    if n <= 0 or n_groups == 0:
        return np.zeros((max(n, 0), len(inverse)), dtype=np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n_groups, size=(n, n_groups))
    counts = np.zeros((n, n_groups), dtype=np.float64)
    np.add.at(counts, (np.repeat(np.arange(n), n_groups), picks.ravel()), 1.0)
    return counts[:, inverse]


def group_indices(groups: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """The same draw as :func:`draw_weights` as row-index arrays (rows of the drawn groups, repeated)."""
    rows = np.arange(len(groups))
    return [np.repeat(rows, w.astype(np.int64)) for w in draw_weights(groups, n, seed)]


def ones(rows: int) -> np.ndarray:
    """The weights of the original sample (every row once): the point estimate."""
    return np.ones((1, rows), dtype=np.float64)


def confusion_counts(weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """``(B, K, K)`` weighted confusion matrices (rows = actual, columns = predicted)."""
    cell = np.asarray(y_true, dtype=np.int64) * K + np.asarray(y_pred, dtype=np.int64)
    onehot = np.zeros((len(cell), K * K))
    onehot[np.arange(len(cell)), cell] = 1.0
    return (np.asarray(weights) @ onehot).reshape(-1, K, K)


def macro_f1_from_confusion(conf: np.ndarray) -> np.ndarray:
    """Macro-F1 per matrix over the classes present in truth or predictions (sklearn's, zero_division=0).

    A matrix with no rows at all (a language absent from a resample) gives NaN.
    """
    tp = np.diagonal(conf, axis1=1, axis2=2)
    denom = conf.sum(axis=2) + conf.sum(axis=1)  # 2TP + FN + FP
    present = denom > 0
    f1 = np.where(present, 2 * tp / np.where(present, denom, 1.0), 0.0)
    n_present = present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_present > 0, f1.sum(axis=1) / n_present, np.nan)


def restrict(weights: np.ndarray, data: tuple) -> tuple[np.ndarray, tuple]:
    """``data = (y_true, x)`` or ``(y_true, x, rows)``: weights zeroed outside ``rows`` (bool), and ``(y_true, x)``.

    Zeroing instead of slicing keeps every metric on the same ``(B, n)`` draw, so a source-language
    and a target-language number from one draw stay paired.
    """
    if len(data) == 3:
        y_true, x, rows = data
        return weights * np.asarray(rows, dtype=np.float64), (y_true, x)
    return weights, tuple(data)


def weighted_macro_f1(weights: np.ndarray, data: tuple) -> np.ndarray:
    """``(B,)`` macro-F1 of ``data = (y_true, y_pred[, rows])`` under each resample's row weights."""
    weights, (y_true, y_pred) = restrict(weights, data)
    return macro_f1_from_confusion(confusion_counts(weights, y_true, y_pred))


def weighted_accuracy(weights: np.ndarray, data: tuple) -> np.ndarray:
    """``(B,)`` accuracy of ``data = (y_true, y_pred[, rows])``."""
    weights, (y_true, y_pred) = restrict(weights, data)
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return weights @ (np.asarray(y_true) == np.asarray(y_pred)).astype(np.float64) / total


def ece_metric(n_bins: int) -> WeightedMetric:
    """A weighted ECE with ``n_bins`` equal-width bins, for ``data = (y_true, probs[, rows])``."""

    def metric(weights: np.ndarray, data: tuple) -> np.ndarray:
        return weighted_ece(weights, data, n_bins)

    return metric


def weighted_ece(weights: np.ndarray, data: tuple, n_bins: int = 10) -> np.ndarray:
    """``(B,)`` expected calibration error of ``data = (y_true, probs[, rows])``, equal-width bins.

    Same bins as :func:`babelfuse.evaluation.calibration.reliability_bins` (right edge inclusive).
    """
    weights, (y_true, probs) = restrict(weights, data)
    probs = np.asarray(probs)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == np.asarray(y_true)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    member = np.zeros((len(conf), n_bins))
    member[np.arange(len(conf)), which] = 1.0
    gap = weights @ (member * (correct - conf)[:, None])  # (B, bins): sum w (acc - conf) per bin
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(gap).sum(axis=1) / total


def percentile_ci(values: np.ndarray, ci: float) -> tuple[float, float]:
    """Percentile interval of the finite resampled values (NaN, NaN when there are none)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = (1.0 - ci) / 2.0 * 100.0
    return float(np.percentile(values, tail)), float(np.percentile(values, 100.0 - tail))


def point(metric_fn: WeightedMetric, data: Any, rows: int) -> float:
    return float(metric_fn(ones(rows), data)[0])


def ci(metric_fn: WeightedMetric, data: Any, draws: np.ndarray, level: float) -> dict[str, float]:
    """``{"value", "ci_low", "ci_high"}`` of one metric: the point estimate and its bootstrap interval."""
    low, high = percentile_ci(metric_fn(draws, data), level) if len(draws) else (float("nan"),) * 2
    return {"value": point(metric_fn, data, draws.shape[1]), "ci_low": low, "ci_high": high}


def paired_ci(metric_fn: WeightedMetric, a: Any, b: Any, draws: np.ndarray, level: float) -> dict[str, float]:
    """``metric(a) - metric(b)`` and its interval, both evaluated on the *same* resamples (paired).

    ``a`` and ``b`` are whatever ``metric_fn`` takes (e.g. ``(y_true, y_pred)`` of two models on the
    same rows). ``resolved`` is True when the interval excludes 0.
    """
    return diff_ci(lambda w: metric_fn(w, a), lambda w: metric_fn(w, b), draws, level)


def diff_ci(
    fa: Callable[[np.ndarray], np.ndarray],
    fb: Callable[[np.ndarray], np.ndarray],
    draws: np.ndarray,
    level: float,
) -> dict[str, float]:
    """:func:`paired_ci` for any two ``weights -> (B,)`` functions (e.g. a mean over source languages)."""
    unit = ones(draws.shape[1])
    diff = float(fa(unit)[0] - fb(unit)[0])
    if len(draws):
        low, high = percentile_ci(fa(draws) - fb(draws), level)
    else:
        low, high = float("nan"), float("nan")
    return {"diff": diff, "ci_low": low, "ci_high": high, "resolved": bool(low > 0 or high < 0)}
