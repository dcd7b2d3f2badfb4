"""The few-shot target-language curve (the protocol IGLUE reports beside zero-shot).

For each ``k`` in ``evaluate.few_shot``, ``k`` labelled posts per class and target language are drawn
from the dedicated ``fewshot`` split (never from test or gate), added to the source training set, and
the fused model is refitted with the same params and seed (early stopping still on source val). The
draws are nested: the posts used at ``k = 5`` are among those at ``k = 10``. ``k = 0`` is the
zero-shot model itself. Zero-shot stays the headline; the curve goes into the detail metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from babelfuse.evaluation.metrics import f1_by_language, language_order
from babelfuse.labels import LABELS

log = logging.getLogger("babelfuse.evaluate")

Split = dict[str, np.ndarray]
Predict = Callable[[dict[str, np.ndarray]], np.ndarray]


def fewshot_rows(pool: Split, k: int, target_langs: Sequence[str], seed: int) -> np.ndarray:
    """Row indices of ``k`` posts per class in each target language (all there are when fewer), nested in k."""
    rng = np.random.default_rng(seed)
    langs, labels = np.asarray(pool["lang"]).astype(str), np.asarray(pool["label"])
    chosen = []
    for code in target_langs:
        for c in range(len(LABELS)):
            rows = rng.permutation(np.flatnonzero((langs == code) & (labels == c)))
            chosen.append(rows[:k])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def concat(a: Split, b: Split) -> Split:
    """Two splits row-stacked on the keys both have."""
    return {key: np.concatenate([a[key], b[key]]) for key in a if key in b}


def take(split: Split, rows: np.ndarray) -> Split:
    return {key: np.asarray(value)[rows] for key, value in split.items()}


def few_shot_curve(
    ks: Sequence[int],
    fit: Callable[[Split], Predict],
    zero_shot: Predict,
    train: Split,
    pool: Split | None,
    test: Split,
    test_inputs: dict[str, np.ndarray],
    source_langs: Sequence[str],
    seed: int,
) -> dict[str, object] | None:
    """``{"k": [...], "n_added": [...], "overall": [...], "target_mean": [...], "per_language": {lang: [...]}}``.

    ``fit(train_split) -> predict`` refits the fused model; ``None`` when there is no fewshot pool.
    """
    if pool is None or not len(pool["label"]):
        log.info("no fewshot split: the few-shot curve is skipped")
        return None
    y, langs = np.asarray(test["label"]), np.asarray(test["lang"]).astype(str)
    order = language_order(langs, source_langs)
    targets = [c for c in order if c not in source_langs]
    out: dict[str, object] = {
        "k": [],
        "n_added": [],
        "overall": [],
        "target_mean": [],
        "per_language": {c: [] for c in order},
    }
    for k in sorted(set(int(k) for k in ks)):
        rows = fewshot_rows(pool, k, targets, seed)
        predict = zero_shot if k == 0 else fit(concat(train, take(pool, rows)))
        f1 = f1_by_language(y, predict(test_inputs), langs)
        log.info("few-shot k=%d (%d target posts added): test macro-F1 %.4f", k, len(rows), f1["overall"])
        out["k"].append(k)
        out["n_added"].append(int(len(rows)))
        out["overall"].append(f1["overall"])
        out["target_mean"].append(float(np.mean([f1[c] for c in targets])) if targets else float("nan"))
        for c in order:
            out["per_language"][c].append(f1[c])
    return out
