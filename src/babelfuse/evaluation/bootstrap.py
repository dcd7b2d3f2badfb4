"""The group bootstrap: resample meanings (a sentence with all its translations), one draw for everything.

The translations of one meaning share their label and their content, so rows are not independent:
resampling rows would give intervals that are too narrow. A *group* is a meaning (``template_id``);
rows with no known group (``-1``) are their own group. One draw of groups is a row-weight matrix
``weights[b, i]`` = how often row ``i``'s group was drawn in resample ``b``. The same matrix serves
every model and every language, so any two numbers computed from it are *paired*: the interval of
their difference (source vs a target language, fused vs a baseline, ECE before vs after scaling)
accounts for their correlation.

Metrics are computed for all resamples at once from weighted confusion counts (one matrix product at
group level, :class:`Draws`), and a language is selected by zeroing the other rows' values, never by
slicing, so every number stays on the same draw.
``weighted_macro_f1`` with all-ones weights is exactly :func:`babelfuse.evaluation.metrics.macro_f1`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Draws:
    """One group-bootstrap draw: ``counts[b, g]`` = times group ``g`` was drawn in resample ``b``.

    Behaves like the ``(B, rows)`` weight matrix ``counts[:, group_of_row]`` but multiplies at group
    level (a meaning's translations share one count), which is ~8x less work with 8 languages.
    """

    counts: np.ndarray  # (B, G)
    indicator: np.ndarray  # (G, rows): 1 where the row belongs to the group

    @property
    def shape(self) -> tuple[int, int]:
        return self.counts.shape[0], self.indicator.shape[1]

    def __len__(self) -> int:
        return self.counts.shape[0]

    def dense(self) -> np.ndarray:
        """The ``(B, rows)`` row weights."""
        return self.counts @ self.indicator


def draw(groups: np.ndarray, n: int, seed: int) -> Draws:
    """``n`` resamples, each drawing as many groups as there are, with replacement (seeded)."""
    _, inverse = np.unique(np.asarray(groups), return_inverse=True)
    n_groups = int(inverse.max()) + 1 if len(inverse) else 0
    indicator = np.zeros((n_groups, len(inverse)))
    indicator[inverse, np.arange(len(inverse))] = 1.0
    counts = np.zeros((max(n, 0), n_groups), dtype=np.float64)
    if n > 0 and n_groups > 0:
        picks = np.random.default_rng(seed).integers(0, n_groups, size=(n, n_groups))
        np.add.at(counts, (np.repeat(np.arange(n), n_groups), picks.ravel()), 1.0)
    return Draws(counts, indicator)


def draw_weights(groups: np.ndarray, n: int, seed: int) -> np.ndarray:
    """:func:`draw` as a dense ``(n, rows)`` row-weight matrix."""
    return draw(groups, n, seed).dense()


def group_indices(groups: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """The same draw as :func:`draw_weights` as row-index arrays (rows of the drawn groups, repeated)."""
    rows = np.arange(len(groups))
    return [np.repeat(rows, w.astype(np.int64)) for w in draw_weights(groups, n, seed)]


def ones(rows: int) -> np.ndarray:
    """The weights of the original sample (every row once): the point estimate."""
    return np.ones((1, rows), dtype=np.float64)


def wsum(weights: np.ndarray | Draws, x: np.ndarray) -> np.ndarray:
    """``(B, k)`` weighted column sums of the per-row values ``x`` (rows, k) under each resample."""
    if isinstance(weights, Draws):
        return weights.counts @ (weights.indicator @ x)
    return np.asarray(weights) @ x


def row_mask(data: tuple) -> tuple[np.ndarray, tuple]:
    """``data = (y_true, x)`` or ``(y_true, x, rows)`` -> (float row mask, ``(y_true, x)``).

    Metrics multiply their per-row values by the mask instead of slicing, so every metric stays on
    the same draw and a source-language and a target-language number from one draw stay paired.
    """
    if len(data) == 3:
        y_true, x, rows = data
        return np.asarray(rows, dtype=np.float64), (y_true, x)
    return np.ones(len(data[0])), tuple(data)


def confusion_counts(
    weights: np.ndarray | Draws, y_true: np.ndarray, y_pred: np.ndarray, mask=None
) -> np.ndarray:
    """``(B, K, K)`` weighted confusion matrices (rows = actual, columns = predicted)."""
    cell = np.asarray(y_true, dtype=np.int64) * K + np.asarray(y_pred, dtype=np.int64)
    onehot = np.zeros((len(cell), K * K))
    onehot[np.arange(len(cell)), cell] = 1.0 if mask is None else mask
    return wsum(weights, onehot).reshape(-1, K, K)


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


def weighted_macro_f1(weights: np.ndarray | Draws, data: tuple) -> np.ndarray:
    """``(B,)`` macro-F1 of ``data = (y_true, y_pred[, rows])`` under each resample's row weights."""
    mask, (y_true, y_pred) = row_mask(data)
    return macro_f1_from_confusion(confusion_counts(weights, y_true, y_pred, mask))


def weighted_accuracy(weights: np.ndarray | Draws, data: tuple) -> np.ndarray:
    """``(B,)`` accuracy of ``data = (y_true, y_pred[, rows])``."""
    mask, (y_true, y_pred) = row_mask(data)
    right = (np.asarray(y_true) == np.asarray(y_pred)).astype(np.float64)
    sums = wsum(weights, np.stack([mask * right, mask], axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[:, 0] / sums[:, 1]


def ece_metric(n_bins: int) -> WeightedMetric:
    """A weighted ECE with ``n_bins`` equal-width bins, for ``data = (y_true, probs[, rows])``."""

    def metric(weights: np.ndarray | Draws, data: tuple) -> np.ndarray:
        return weighted_ece(weights, data, n_bins)

    return metric


def weighted_ece(weights: np.ndarray | Draws, data: tuple, n_bins: int = 10) -> np.ndarray:
    """``(B,)`` expected calibration error of ``data = (y_true, probs[, rows])``, equal-width bins.

    Same bins as :func:`babelfuse.evaluation.calibration.reliability_bins` (right edge inclusive).
    """
    mask, (y_true, probs) = row_mask(data)
    probs = np.asarray(probs)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == np.asarray(y_true)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    member = np.zeros((len(conf), n_bins + 1))
    member[np.arange(len(conf)), which] = mask * (correct - conf)  # sum w (acc - conf) per bin
    member[:, -1] = mask
    sums = wsum(weights, member)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(sums[:, :-1]).sum(axis=1) / sums[:, -1]


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


def ci(metric_fn: WeightedMetric, data: Any, draws: np.ndarray | Draws, level: float) -> dict[str, float]:
    """``{"value", "ci_low", "ci_high"}`` of one metric: the point estimate and its bootstrap interval."""
    low, high = percentile_ci(metric_fn(draws, data), level) if len(draws) else (float("nan"),) * 2
    return {"value": point(metric_fn, data, draws.shape[1]), "ci_low": low, "ci_high": high}


def paired_ci(
    metric_fn: WeightedMetric, a: Any, b: Any, draws: np.ndarray | Draws, level: float
) -> dict[str, float]:
    """``metric(a) - metric(b)`` and its interval, both evaluated on the *same* resamples (paired).

    ``a`` and ``b`` are whatever ``metric_fn`` takes (e.g. ``(y_true, y_pred)`` of two models on the
    same rows). ``resolved`` is True when the interval excludes 0.
    """
    return diff_ci(lambda w: metric_fn(w, a), lambda w: metric_fn(w, b), draws, level)


def diff_ci(
    fa: Callable[[np.ndarray], np.ndarray],
    fb: Callable[[np.ndarray], np.ndarray],
    draws: np.ndarray | Draws,
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
