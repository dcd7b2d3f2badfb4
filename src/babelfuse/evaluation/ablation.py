"""What each modality adds: masking at test time, missing-rate robustness, fusion gain over baselines.

A modality is "missing" for a row exactly as the fuse stage writes it when absent: its mask column is 0
and its feature row is zeros. ``predict`` is any callable from a model-input dict
``{"text", "image", "audio", "mask"}`` to ``(n, 3)`` probabilities (in the stage: ``model.predict``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from babelfuse.evaluation.metrics import f1_by_language
from babelfuse.paths import MODALITIES

Inputs = dict[str, np.ndarray]
Predict = Callable[[Inputs], np.ndarray]


def mask_modality(inputs: Inputs, modality: str, rows: np.ndarray | None = None) -> Inputs:
    """A copy of ``inputs`` with ``modality`` missing for ``rows`` (bool or index array; all when None)."""
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
    out = dict(inputs)
    sel = slice(None) if rows is None else rows
    features = np.array(inputs[modality], copy=True)
    features[sel] = 0.0
    mask = np.array(inputs["mask"], copy=True)
    mask[sel, MODALITIES.index(modality)] = 0.0
    out[modality], out["mask"] = features, mask
    return out


def missing_rows(langs: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """Bool rows: ``round(rate * n_lang)`` random rows of each language (stratified, seeded).

    One permutation per language and seed, so the rows missing at 25 % are a subset of those at 50 %.
    """
    langs = np.asarray(langs)
    rng = np.random.default_rng(seed)
    chosen = np.zeros(len(langs), dtype=bool)
    for code in sorted(set(langs.tolist())):
        idx = np.flatnonzero(langs == code)
        order = rng.permutation(idx)
        chosen[order[: int(round(rate * len(idx)))]] = True
    return chosen


def rate_key(rate: float) -> str:
    """``0.25 -> "missing_25"``: a key without dots, so DVC's flattened metric names stay readable."""
    return f"missing_{int(round(rate * 100))}"


def missing_rate_robustness(
    predict: Predict,
    inputs: Inputs,
    y_true: np.ndarray,
    langs: np.ndarray,
    rates: Sequence[float],
    seed: int = 0,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{modality: {rate_key: {"overall"|lang: macro_f1}}}`` with that share of rows missing the modality.

    Rows whose modality was already absent in the data stay absent at every rate.
    """
    for rate in rates:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"evaluate.missing_rates: {rate} is not a share in [0, 1]")
    base: dict[str, float] | None = None
    out: dict[str, dict[str, dict[str, float]]] = {}
    for i, m in enumerate(MODALITIES):
        out[m] = {}
        for rate in rates:
            if rate == 0.0:
                base = base if base is not None else f1_by_language(y_true, predict(inputs), langs)
                out[m][rate_key(rate)] = base
            else:
                rows = missing_rows(langs, rate, seed + 1000 * (i + 1))
                masked = mask_modality(inputs, m, rows)
                out[m][rate_key(rate)] = f1_by_language(y_true, predict(masked), langs)
    return out


def select_best_baseline(val_scores: dict[str, float]) -> str:
    """The single-modality baseline with the highest source-``val`` macro-F1 (ties: MODALITIES order)."""
    if not val_scores:
        raise ValueError("no baseline scores to choose from")
    return max(val_scores, key=lambda m: (val_scores[m], -list(val_scores).index(m)))
