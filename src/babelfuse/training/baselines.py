"""Baselines logged beside the fused model: each modality alone (same head) and a LogisticRegression.

``fusion_gain`` = fused val macro-F1 minus the best single-modality model's: the number that says
whether fusing was worth it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression

from babelfuse.evaluation.metrics import macro_f1, predictions
from babelfuse.labels import LABELS
from babelfuse.paths import MODALITIES
from babelfuse.training.fit import FitResult, cross_entropy, fit_model, model_inputs
from babelfuse.training.model import build_single_modality_model

log = logging.getLogger("babelfuse.training")


@dataclass
class LogRegResult:
    val_macro_f1: float
    val_accuracy: float
    val_loss: float
    seconds: float
    C: float = 1.0


def single_modality_builder(modality: str) -> Callable[[dict[str, int], dict[str, Any]], keras.Model]:
    """``fit_model(build=...)`` for the fused model's head on one modality."""

    def build(dims: dict[str, int], params: dict[str, Any]) -> keras.Model:
        return build_single_modality_model(modality, dims, params)

    return build


def fit_single_modality(
    modality: str,
    params: dict[str, Any],
    train: dict[str, np.ndarray],
    val: dict[str, np.ndarray],
    seed: int,
    **fit_kwargs: Any,
) -> FitResult:
    """The fused model's head on one modality, trained exactly like the fused model."""
    return fit_model(params, train, val, seed, build=single_modality_builder(modality), **fit_kwargs)


def concatenated(split: dict[str, np.ndarray]) -> np.ndarray:
    """All modality features side by side plus the mask (absent modalities are zeros)."""
    inputs = model_inputs(split)
    return np.concatenate([inputs[m] for m in (*MODALITIES, "mask")], axis=1)


def logreg_probs(model: LogisticRegression, split: dict[str, np.ndarray]) -> np.ndarray:
    """``(n, 3)`` class probabilities (zero for a class the model never saw in training)."""
    probs = np.zeros((len(split["label"]), len(LABELS)))
    probs[:, model.classes_] = model.predict_proba(concatenated(split))
    return probs


def fit_logreg(
    train: dict[str, np.ndarray], val: dict[str, np.ndarray], seed: int, C: float = 1.0
) -> tuple[LogisticRegression, LogRegResult]:
    """scikit-learn LogisticRegression (L2, inverse strength ``C``) on the concatenated standardised
    features, scored on val."""
    started = time.perf_counter()
    model = LogisticRegression(C=float(C), max_iter=2000, random_state=seed)
    model.fit(concatenated(train), np.asarray(train["label"]))
    seconds = time.perf_counter() - started
    probs = logreg_probs(model, val)
    labels = np.asarray(val["label"])
    result = LogRegResult(
        val_macro_f1=macro_f1(labels, predictions(probs)),
        val_accuracy=float(np.mean(np.argmax(probs, axis=1) == labels)),
        val_loss=cross_entropy(labels, probs),
        seconds=seconds,
        C=float(C),
    )
    return model, result


def tune_logreg_c(
    train: dict[str, np.ndarray], val: dict[str, np.ndarray], grid: list[float], seed: int
) -> tuple[float, dict[str, float]]:
    """(the C of ``grid`` with the best val macro-F1, val macro-F1 per C). Ties go to the smaller C
    (the stronger regularisation). Only train and val are read."""
    scores = {float(c): fit_logreg(train, val, seed, C=c)[1].val_macro_f1 for c in sorted(grid)}
    best = max(scores, key=lambda c: (scores[c], -c))
    return best, scores


def logreg_to_json(model: LogisticRegression) -> dict[str, Any]:
    """The fitted LogisticRegression as plain JSON (no pickle): what ``logreg.json`` holds."""
    return {
        "model": "LogisticRegression",
        "C": float(model.C),
        "features": [*MODALITIES, "mask"],  # concatenated in this order, as ``concatenated`` does
        "classes": [int(c) for c in model.classes_],
        "coef": np.asarray(model.coef_, dtype=float).tolist(),
        "intercept": np.asarray(model.intercept_, dtype=float).tolist(),
    }


def logreg_json_probs(payload: dict[str, Any], split: dict[str, np.ndarray]) -> np.ndarray:
    """``(n, 3)`` probabilities of a ``logreg.json`` model on a fused split (multinomial softmax)."""
    coef, intercept = np.asarray(payload["coef"], dtype=float), np.asarray(payload["intercept"], dtype=float)
    logits = concatenated(split).astype(float) @ coef.T + intercept
    if logits.shape[1] == 1:  # two classes: scikit-learn keeps one row of coefficients
        logits = np.concatenate([-logits, logits], axis=1) / 2.0
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    probs = np.zeros((len(logits), len(LABELS)))
    probs[:, payload["classes"]] = exp / exp.sum(axis=1, keepdims=True)
    return probs


def fusion_gain(fused_f1: float, single_f1: dict[str, float]) -> tuple[str, float]:
    """(best single modality, fused macro-F1 minus its macro-F1)."""
    best = max(single_f1, key=lambda m: single_f1[m])
    return best, float(fused_f1 - single_f1[best])
